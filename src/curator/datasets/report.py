"""The manifest stage's metrics (``metrics/manifest.json``): counts and hours per split and slice, and
every rejected file counted by reason (a few named), so no utterance is lost silently."""

from __future__ import annotations

from collections import Counter, defaultdict

from curator.datasets.official import ImportResult

SECONDS_PER_HOUR = 3600.0
HOURS_DECIMALS = 6


def _slices(rows: list, key: str) -> dict[str, dict[str, float]]:
    n: Counter = Counter()
    sec: defaultdict[str, float] = defaultdict(float)
    for r in rows:
        value = str(getattr(r, key))
        n[value] += 1
        sec[value] += r.duration_sec
    return {k: {"n": n[k], "hours": round(sec[k] / SECONDS_PER_HOUR, HOURS_DECIMALS)} for k in sorted(n)}


def summarize(dataset: str, results: dict[str, ImportResult], max_examples: int) -> dict:
    """JSON-able summary of every processed split."""
    out: dict = {"dataset": dataset, "splits": {}}
    for split, res in results.items():
        reasons = Counter(r.reason for r in res.rejected)
        out["splits"][split] = {
            "utterances": len(res.rows),
            "hours": round(sum(r.duration_sec for r in res.rows) / SECONDS_PER_HOUR, HOURS_DECIMALS),
            "distortion": _slices(res.rows, "distortion"),
            "language": _slices(res.rows, "language"),
            "sr": _slices(res.rows, "sr"),
            "rejected": len(res.rejected),
            "rejected_by_reason": dict(sorted(reasons.items())),
            "rejected_examples": [{"utt_id": r.utt_id, "path": r.path, "reason": r.reason}
                                  for r in res.rejected[:max_examples]],
        }
    return out
