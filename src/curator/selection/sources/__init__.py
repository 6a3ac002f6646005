"""Source-level selection: the speech recordings to simulate from (under an hours budget, with the pair-level
strategies, quotas, gate and diversity, plus per-speaker/corpus/language caps), a ``list`` selector, and the
noise, wind and RIR sources that pass their filters. ``python -m curator.selection.sources``."""

from curator.selection.sources.select import SourceSelection, SourceSelectionError, select_sources

__all__ = ["SourceSelection", "SourceSelectionError", "select_sources"]
