"""urgent-curator: score, select, train and evaluate curated speech-enhancement data (URGENT 2026)."""

from curator.determinism import pin_entry_point as _pin_entry_point

# `python -m curator.<stage>` imports this package, then the stage's parent packages (which load numpy, faiss,
# torch), then its __main__: the numeric environment of a stage must be pinned here, first
_pin_entry_point()

__version__ = "0.1.0"
