"""Per-slice bar charts (enhanced vs noisy input) as PNGs, and the table behind them as CSV for `dvc plots`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from curator.evaluation.report import NOISY_PREFIX
from curator.io import atomic_path

BAR_HEIGHT_INCHES = 0.35  # figure height per slice value
MIN_HEIGHT_INCHES = 2.5
PANEL_WIDTH_INCHES = 4.0
DPI = 110


def slice_table(slices: dict[str, Any], metrics: Sequence[str]) -> pd.DataFrame:
    """Flatten eval_slices.json into rows ``split, slice_by, slice, n, <metric>..., noisy_<metric>...`` (paired
    means: each metric over the slice's utterances scored on both sides)."""
    rows = []
    for split, block in slices.items():
        for key, values in block.items():
            for value, stats in values.items():
                row = {"split": split, "slice_by": key, "slice": f"{key}={value}", "n": stats["n"]}
                for m in metrics:
                    row[m], row[NOISY_PREFIX + m] = stats[m]["enhanced"], stats[m]["noisy"]
                rows.append(row)
    cols = ["split", "slice_by", "slice", "n", *metrics, *(NOISY_PREFIX + m for m in metrics)]
    return pd.DataFrame(rows, columns=cols)


def plot_slices(table: pd.DataFrame, metrics: Sequence[str], out_dir: Path) -> list[Path]:
    """One PNG per (split, slice column): a panel per metric, enhanced and noisy bars per slice value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for (split, key), part in table.groupby(["split", "slice_by"], sort=True):
        height = max(MIN_HEIGHT_INCHES, BAR_HEIGHT_INCHES * len(part) * 2)
        fig, axes = plt.subplots(1, len(metrics), figsize=(PANEL_WIDTH_INCHES * len(metrics), height),
                                 squeeze=False, sharey=True)
        labels = [f"{v.split('=', 1)[1]} (n={n})" for v, n in zip(part["slice"], part["n"], strict=True)]
        for ax, metric in zip(axes[0], metrics, strict=True):
            plot = pd.DataFrame({"noisy": part[NOISY_PREFIX + metric].to_numpy(dtype=float),
                                 "enhanced": part[metric].to_numpy(dtype=float)}, index=labels)
            plot.plot.barh(ax=ax, color=["0.7", "tab:blue"], legend=ax is axes[0][0])
            ax.set_title(metric)
            ax.grid(axis="x", alpha=0.3)
        fig.suptitle(f"{split}: mean per {key}")
        fig.tight_layout()
        path = out_dir / f"{split}_{key}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=DPI, format="png")
        plt.close(fig)
        written.append(path)
    return written
