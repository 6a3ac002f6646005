"""``python -m curator.evaluation.compare``: rank several systems the URGENT way from their per-utterance Parquet.

Each file is one system (named after its folder, i.e. the experiment). Systems must have scored the same
utterances, otherwise their means are not comparable. ``--with_noisy`` adds the unprocessed input as a system.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from curator.evaluation.metrics import METRICS
from curator.evaluation.ranking import rank_systems
from curator.evaluation.report import NOISY_PREFIX
from curator.io import atomic_path

NOISY_SYSTEM = "noisy_input"


class CompareError(ValueError):
    """Per-utterance files that cannot be compared."""


def system_means(paths: Sequence[Path], split: str, with_noisy: bool) -> pd.DataFrame:
    """One row per system: the mean of every registered metric column the files share."""
    frames = {}
    for path in paths:
        df = pd.read_parquet(path)
        frames[path.parent.name or str(path)] = df[df["split"] == split].set_index("utt_id")
    if len(frames) != len(paths):
        raise CompareError("two files have the same folder name; give each system its own folder")
    first_name, first = next(iter(frames.items()))
    for name, df in frames.items():
        if df.empty:
            raise CompareError(f"system '{name}' has no rows for split '{split}'")
        if set(df.index) != set(first.index):
            raise CompareError(f"systems '{first_name}' and '{name}' scored different utterances of '{split}'")
    metrics = [m for m in METRICS.names() if all(m in df.columns for df in frames.values())]
    if not metrics:
        raise CompareError("the files share no registered metric column")
    means = pd.DataFrame({name: df[metrics].mean() for name, df in frames.items()}).T
    if with_noisy:
        means.loc[NOISY_SYSTEM] = [first[NOISY_PREFIX + m].mean() for m in metrics]
    return means


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m curator.evaluation.compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("per_utt", nargs="+", type=Path, help="per_utt.parquet files, one per system")
    ap.add_argument("--split", default="test", help="split to compare on (default: %(default)s)")
    ap.add_argument("--with_noisy", action="store_true", help="add the noisy input as a system")
    ap.add_argument("--out", type=Path, default=None, help="also write means and ranks as CSV")
    args = ap.parse_args(argv)
    try:
        means = system_means(args.per_utt, args.split, args.with_noisy)
    except (CompareError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    table = means.join(rank_systems(means)).sort_values("overall", kind="stable")
    print(table.round(4).to_string())
    if args.out is not None:
        with atomic_path(args.out) as tmp:
            table.to_csv(tmp, index_label="system")
    return 0


if __name__ == "__main__":
    sys.exit(main())
