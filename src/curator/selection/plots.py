"""Plots of a selection: DVC-native CSV data (for ``dvc plots show/diff``) and PNG images for offline viewing.

* ``hours_per_slice``: selected hours against the feasible quota target, per slice;
* ``loss_hist``: hours per ``loss_proxy`` bin in the pool and in the selection, with the pool's VaR line, over
  speech rows only, like every tail figure (speech-free rows carry the constant
  ``score.loss_proxy.speech_free_hardness``, not a measured difficulty; their hours are named in the title).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd

from curator.io import atomic_open
from curator.selection.base import Selection

LOSS_BINS = 40
"""Histogram bins across the pool's loss_proxy range."""
FIGURE_DPI = 110
CSV_FLOAT_FORMAT = "%.6g"


def hours_per_slice(sel: Selection) -> pd.DataFrame:
    pool = sel.pool
    return pd.DataFrame({
        "slice": pool.slice_names,
        "selected_hours": pool.slice_hours(sel.selected),
        "target_hours": sel.plan.feasible,
    })


def loss_histogram(sel: Selection) -> pd.DataFrame:
    """Hours per loss bin over speech rows (speech-free rows are left out, as in the tail statistics)."""
    pool = sel.pool
    speech = ~pool.speech_free
    loss = pool.loss[speech]
    lo, hi = (float(loss.min()), float(loss.max())) if loss.size else (0.0, 1.0)
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, LOSS_BINS + 1)
    pool_h, _ = np.histogram(loss, edges, weights=pool.hours[speech])
    picked = speech & sel.selected
    sel_h, _ = np.histogram(pool.loss[picked], edges, weights=pool.hours[picked])
    return pd.DataFrame({"loss_proxy": 0.5 * (edges[:-1] + edges[1:]), "pool_hours": pool_h,
                         "selected_hours": sel_h})


def render_plots(sel: Selection, var_pool: float | None) -> dict[str, bytes]:
    """Both plots' CSV data and PNG images, as file name -> bytes (nothing is written)."""
    slices, hist = hours_per_slice(sel), loss_histogram(sel)
    out = {"hours_per_slice.csv": _csv(slices), "loss_hist.csv": _csv(hist)}
    free = sel.pool.speech_free
    note = (f"{int(free.sum())} speech-free rows ({sel.pool.hours[free].sum():.3g} h, "
            f"{int((free & sel.selected).sum())} selected) not shown" if free.any() else "")
    out.update(_png(slices, hist, var_pool, sel.params.alpha, note))
    return out


def write_rendered(files: dict[str, bytes], out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write :func:`render_plots` output into ``out_dir``, each file atomically; returns the paths written."""
    paths = []
    for name, data in files.items():
        path = Path(out_dir) / name
        with atomic_open(path, "wb") as f:
            f.write(data)
        paths.append(path)
    return paths


def _csv(df: pd.DataFrame) -> bytes:
    text = io.StringIO(newline="")
    df.to_csv(text, index=False, float_format=CSV_FLOAT_FORMAT)
    return text.getvalue().encode("utf-8")


def load_matplotlib():  # noqa: ANN201 (the pyplot module, imported lazily)
    """Import pyplot on the file-only Agg backend (the CLI calls this on a spare thread while the pool loads)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(slices: pd.DataFrame, hist: pd.DataFrame, var_pool: float | None, alpha: float,
         note: str = "") -> dict[str, bytes]:
    plt = load_matplotlib()

    out = {}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(slices) + 1.5))
    y = np.arange(len(slices))
    ax.barh(y + 0.2, slices["selected_hours"], height=0.4, label="selected")
    ax.barh(y - 0.2, slices["target_hours"], height=0.4, label="quota target (feasible)", alpha=0.6)
    ax.set_yticks(y, slices["slice"])
    ax.set_xlabel("hours")
    ax.set_title("Selected hours per slice")
    ax.legend(loc="lower right")
    out["hours_per_slice.png"] = _save(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    width = float(np.diff(hist["loss_proxy"]).mean()) if len(hist) > 1 else 1.0
    ax.bar(hist["loss_proxy"], hist["pool_hours"], width=width, alpha=0.4, label="pool")
    ax.bar(hist["loss_proxy"], hist["selected_hours"], width=width, alpha=0.8, label="selected")
    if var_pool is not None and np.isfinite(var_pool):
        ax.axvline(var_pool, color="k", linestyle="--", label=f"VaR of speech rows (alpha={alpha:g})")
    ax.set_xlabel("loss_proxy (higher = harder)")
    ax.set_ylabel("hours")
    ax.set_title("loss_proxy of speech rows: pool vs selection" + (f"\n({note})" if note else ""), fontsize=10)
    ax.legend()
    out["loss_hist.png"] = _save(fig)
    return out


def _save(fig) -> bytes:  # noqa: ANN001 (matplotlib Figure, imported lazily)
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=FIGURE_DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
