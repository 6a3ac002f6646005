"""The manifest stage's metrics (``metrics/manifest.json``): counts and hours per split and slice, and
every rejected file counted by reason (a few named), so no utterance is lost silently."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator

from curator.contract.manifest import Utterance
from curator.datasets.official import Rejection

SECONDS_PER_HOUR = 3600.0
HOURS_DECIMALS = 6
SLICE_KEYS = ("distortion", "language", "sr")
SPEECH_FREE = "speech_free"
"""The primary label of noise-only rows (no target by design)."""


class SplitTally:
    """Counts utterances and hours per slice while rows stream through to the manifest writer."""

    def __init__(self) -> None:
        self.n: Counter = Counter()
        self.seconds: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.no_target = 0
        self.no_target_speech = 0
        self.no_target_seconds = 0.0

    def count(self, rows: Iterable[Utterance]) -> Iterator[Utterance]:
        """Yield ``rows`` unchanged, tallying each one."""
        for row in rows:
            for key in ("all", *SLICE_KEYS):
                slot = (key, "all" if key == "all" else str(getattr(row, key)))
                self.n[slot] += 1
                self.seconds[slot] += row.duration_sec
            if row.clean_path is None:
                self.no_target += 1
                self.no_target_seconds += row.duration_sec
                self.no_target_speech += row.distortion != SPEECH_FREE
            yield row

    def _slices(self, key: str) -> dict[str, dict[str, float]]:
        values = sorted(v for k, v in self.n if k == key)
        return {v: {"n": self.n[(key, v)], "hours": round(self.seconds[(key, v)] / SECONDS_PER_HOUR, HOURS_DECIMALS)}
                for v in values}

    def summary(self, rejected: list[Rejection], max_examples: int) -> dict:
        """JSON-able summary of the split after its rows have streamed through :meth:`count`."""
        reasons = Counter(r.reason for r in rejected)
        return {
            "utterances": self.n[("all", "all")],
            "hours": round(self.seconds[("all", "all")] / SECONDS_PER_HOUR, HOURS_DECIMALS),
            **{key: self._slices(key) for key in SLICE_KEYS},
            # rows without a clean target: speech-free examples, and (not_speech_free) rows labelled as speech whose
            # reference is missing (a folder's noisy file without a clean partner): intrusive metrics skip them all
            "without_target": {"n": self.no_target, "hours": round(self.no_target_seconds / SECONDS_PER_HOUR,
                                                                   HOURS_DECIMALS),
                               "not_speech_free": self.no_target_speech},
            "rejected": len(rejected),
            "rejected_by_reason": dict(sorted(reasons.items())),
            "rejected_examples": [{"utt_id": r.utt_id, "path": r.path, "reason": r.reason}
                                  for r in rejected[:max_examples]],
        }
