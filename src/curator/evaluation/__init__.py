"""Evaluate an enhancement checkpoint (the ``eval`` stage).

``enhance`` runs a model on each utterance at its own sampling rate, ``metrics`` is the registry of URGENT
metrics by official category, ``report`` turns per-utterance scores into means, noisy-input baselines, tails
and per-slice means, ``ranking`` implements the URGENT ranking scheme, and ``plots`` draws per-slice bars.
"""
