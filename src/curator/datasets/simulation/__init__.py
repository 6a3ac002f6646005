"""URGENT-style simulation: draw per-utterance parameters (``plan``), render audio from them (``render``),
with the distortions themselves as pure numpy functions (``distortions``)."""
