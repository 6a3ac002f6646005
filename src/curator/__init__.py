"""urgent-curator: score, select, train and evaluate curated speech-enhancement data (URGENT 2026)."""

__version__ = "0.1.0"
