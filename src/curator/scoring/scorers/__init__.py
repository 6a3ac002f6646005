"""Scorer plug-ins: one module each, registered with ``@SCORERS.register(name)`` (auto-discovered)."""
