"""The efficacy report: every variant against the baseline at equal hours, the quality gate's effect, learning
curves and tails, each difference paired and with a confidence interval that covers seeds and utterances.

A run is (variant, budget, seed); its per-utterance scores come from the eval stage. For one comparison at one
budget, each side is a (seeds x utterances) matrix over the utterances that every run scored. The estimate is
the difference of the grand means; the interval comes from a two-level bootstrap that resamples utterances
(shared by both sides: the pairing) and, independently per side, training seeds, so it widens when seeds
disagree. The same seeded generator gives the same intervals on every machine.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curator.config import load_section
from curator.evaluation.efficacy.params import SKIPPED_FILE, CompareParams, budget_tag, eval_dir
from curator.evaluation.metrics import METRICS
from curator.evaluation.paired import (
    BOOTSTRAP_BLOCK,
    bootstrap_p,
    family_verdicts,
    mark_family,
    verdict,
    worst_mean,
)
from curator.evaluation.slicing import present, slice_masks
from curator.io import atomic_path, write_json

SPLIT = "test"
DPI = 110
PANEL_WIDTH_INCHES = 4.0
PANEL_HEIGHT_INCHES = 3.2


class ReportError(ValueError):
    """A run's per-utterance file is missing or unusable; the message names it."""


@dataclass(frozen=True)
class Contrast:
    """Variant A against variant B on one metric at one budget."""

    n_utts: int
    n_dropped: int
    mean_a: float
    mean_b: float
    diff: float
    ci_low: float
    ci_high: float
    tail_diff: float
    tail_ci_low: float
    tail_ci_high: float
    verdict: str
    tail_verdict: str
    p_value: float

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) and math.isfinite(v) else None if isinstance(v, float)
                    else v) for k, v in self.__dict__.items()}


def contrast(a: np.ndarray, b: np.ndarray, higher_is_better: bool, n_boot: int, seed: int, confidence: float,
             tail: float) -> Contrast:
    """A (seeds_a x utts) against B (seeds_b x utts), same utterance columns; NaN columns dropped from both."""
    keep = np.isfinite(a).all(axis=0) & np.isfinite(b).all(axis=0)
    a, b = a[:, keep], b[:, keep]
    n = int(keep.sum())
    if n == 0:
        nan = math.nan
        return Contrast(0, int((~keep).sum()), nan, nan, nan, nan, nan, nan, nan, nan, "no evidence", "no evidence",
                        nan)
    rng = np.random.default_rng(seed)
    diffs, tails = np.empty(n_boot), np.empty(n_boot)
    for lo in range(0, n_boot, BOOTSTRAP_BLOCK):
        r = min(n_boot, lo + BOOTSTRAP_BLOCK) - lo
        utt = rng.integers(0, n, size=(r, n))
        sa = rng.integers(0, a.shape[0], size=(r, a.shape[0]))
        sb = rng.integers(0, b.shape[0], size=(r, b.shape[0]))
        ua = a[sa[:, :, None], utt[:, None, :]].mean(axis=1)  # (r, n): per-utterance mean over drawn seeds
        ub = b[sb[:, :, None], utt[:, None, :]].mean(axis=1)
        diffs[lo:lo + r] = ua.mean(axis=1) - ub.mean(axis=1)
        tails[lo:lo + r] = worst_mean(ua, tail, higher_is_better) - worst_mean(ub, tail, higher_is_better)
    q = (1.0 - confidence) / 2.0
    lo_ci, hi_ci = np.quantile(diffs, [q, 1.0 - q])
    tlo, thi = np.quantile(tails, [q, 1.0 - q])
    ma, mb = a.mean(axis=0), b.mean(axis=0)
    return Contrast(n, int((~keep).sum()), float(ma.mean()), float(mb.mean()), float(ma.mean() - mb.mean()),
                    float(lo_ci), float(hi_ci),
                    float(worst_mean(ma, tail, higher_is_better) - worst_mean(mb, tail, higher_is_better)),
                    float(tlo), float(thi), verdict(float(lo_ci), float(hi_ci), higher_is_better),
                    verdict(float(tlo), float(thi), higher_is_better), bootstrap_p(diffs))


def skipped_variants(params: CompareParams, eval_dir: Any) -> dict[str, str]:
    """Variants whose cells were not run, with why (a source-level variant on a dataset that lists no sources
    writes ``skipped.json`` in its eval folders instead of per-utterance metrics)."""
    out: dict[str, str] = {}
    for variant in params.variants:
        for budget in params.budgets:
            for seed in params.seeds:
                marker = Path(eval_dir(variant, budget, seed)) / SKIPPED_FILE
                if marker.is_file():
                    out[variant] = json.loads(marker.read_text(encoding="utf-8"))["reason"]
    return out


def load_runs(params: CompareParams, eval_dir: Any) -> pd.DataFrame:
    """Every run's test rows, long format: variant, budget, seed, utt_id, distortion, <metrics>."""
    frames = []
    for variant in params.variants:
        for budget in params.budgets:
            for seed in params.seeds:
                path = Path(eval_dir(variant, budget, seed)) / "per_utt.parquet"
                if not path.is_file():
                    raise ReportError(f"run {variant} / K={budget} / seed {seed}: '{path}' does not exist; run "
                                      "`dvc repro` (the efficacy stages) first")
                df = pd.read_parquet(path)
                df = df[df["split"] == SPLIT].assign(variant=variant, budget=float(budget), seed=int(seed))
                frames.append(df)
    return pd.concat(frames, ignore_index=True)


def _matrix(runs: pd.DataFrame, variant: str, budget: float, metric: str, utts: pd.Index,
            rows: np.ndarray | None = None) -> np.ndarray:
    part = runs[(runs["variant"] == variant) & (runs["budget"] == budget)]
    wide = part.pivot(index="seed", columns="utt_id", values=metric).reindex(columns=utts)
    values = wide.to_numpy(dtype=np.float64)
    return values if rows is None else values[:, rows]


def build_report(params: CompareParams, runs: pd.DataFrame, n_boot: int, seed: int, confidence: float,
                 tail: float, min_slice_utts: int, correction: str) -> dict[str, Any]:
    """The report as a JSON-able dict (see the module docstring). Per-slice verdicts follow ``eval.slice_verdicts``
    (``min_slice_utts``, ``correction``): per variant, budget, slice column and metric, the column's values are
    one family (:func:`curator.evaluation.paired.mark_family`)."""
    metrics = [m for m in params.headline_metrics if m in runs.columns]
    missing = [m for m in params.headline_metrics if m not in runs.columns]
    if not metrics:
        raise ReportError(f"no headline metric {params.headline_metrics} in the runs' per-utterance files")
    utts = pd.Index(sorted(set.intersection(*(set(g["utt_id"]) for _, g in
                                              runs.groupby(["variant", "budget", "seed"])))))
    first = runs.drop_duplicates("utt_id").set_index("utt_id").reindex(utts)
    slices = {key: list(slice_masks(first, key)) for key in present(first, params.slices)}
    directions = {m: METRICS.get(m).higher_is_better for m in metrics}

    def cmp(a: str, b: str, budget: float, m: str, rows: np.ndarray | None = None) -> dict[str, Any]:
        return contrast(_matrix(runs, a, budget, m, utts, rows), _matrix(runs, b, budget, m, utts, rows),
                        directions[m], n_boot, seed, confidence, tail).as_dict()

    report: dict[str, Any] = {
        "split": SPLIT, "baseline": params.baseline, "n_utts": len(utts), "seeds": list(params.seeds),
        "budgets": [float(b) for b in params.budgets], "metrics": metrics, "metrics_missing": missing,
        "confidence": confidence, "tail_fraction": tail, "n_boot": n_boot,
        "slice_verdicts": {"min_utts": min_slice_utts, "correction": correction},
        "vs_baseline": {}, "gate": {}, "pairs": {}, "curve": {}, "slices": {}, "seed_spread": {},
    }
    for budget in params.budgets:
        key = budget_tag(budget)
        report["vs_baseline"][key] = {v: {m: cmp(v, params.baseline, budget, m) for m in metrics}
                                      for v in params.variants if v != params.baseline}
        report["gate"][key] = {f"{g}_vs_{u}": {m: cmp(g, u, budget, m) for m in metrics}
                               for g, u in params.gate_pairs.items()}
        report["pairs"][key] = {f"{a}_vs_{b}": {m: cmp(a, b, budget, m) for m in metrics}
                                for a, b in params.pairs.items()}
        report["slices"][key] = {
            v: {column: {value: {"n": int(rows.sum()), **{m: cmp(v, params.baseline, budget, m, rows)
                                                          for m in metrics}}
                         for value, rows in masks}
                for column, masks in slices.items()}
            for v in params.variants if v != params.baseline}
        for per_column in report["slices"][key].values():
            for values in per_column.values():
                for m in metrics:
                    mark_family([stats[m] for stats in values.values()], directions[m], confidence, min_slice_utts,
                                correction, n_key="n_utts", diff_key="diff")
    for m in metrics:
        _mark_headline_family([c[m] for per in report["vs_baseline"].values() for c in per.values()],
                              directions[m], confidence, correction)
    for v in params.variants:
        report["curve"][v] = {}
        report["seed_spread"][v] = {}
        for budget in params.budgets:
            key = budget_tag(budget)
            report["curve"][v][key] = {m: _mean_ci(_matrix(runs, v, budget, m, utts), n_boot, seed, confidence)
                                       for m in metrics}
            report["seed_spread"][v][key] = {
                m: round(float(np.nanstd(np.nanmean(_matrix(runs, v, budget, m, utts), axis=1))), 6)
                for m in metrics}
    report["resolution"] = {m: _median_half_width(report, m) for m in metrics}
    return report


def _mark_headline_family(cells: list[dict[str, Any]], higher_is_better: bool, confidence: float,
                          correction: str) -> None:
    """One metric's strategy-vs-baseline contrasts (every variant and budget) as one family: each cell gains
    ``family_q`` and ``family_verdict`` (Benjamini-Hochberg with ``correction="bh"``), beside its own interval's
    ``verdict``, so a headline count of "better" cells can be read with the chance findings of many tests
    taken out."""
    q, verdicts = family_verdicts(np.array([c["n_utts"] for c in cells], dtype=np.int64),
                                  np.array([math.nan if c["diff"] is None else c["diff"] for c in cells]),
                                  np.array([math.nan if c["p_value"] is None else c["p_value"] for c in cells]),
                                  higher_is_better, confidence, 0, correction)
    for c, qi, v in zip(cells, q, verdicts, strict=True):
        c["family_q"] = round(float(qi), 6) if math.isfinite(qi) else None
        c["family_verdict"] = v


def _family_line(report: Mapping[str, Any], metrics: list[str]) -> str:
    """Which marks of the strategy-vs-baseline table hold with the table's many tests taken into account."""
    rule = report["slice_verdicts"]["correction"]
    alpha = round(1.0 - report["confidence"], 6)
    n = sum(len(per) for per in report["vs_baseline"].values())
    held = []
    for m in metrics:
        marked = [f"{v} K={key} {_MARK[c[m]['family_verdict']].strip()}" for key, per in report["vs_baseline"].items()
                  for v, c in per.items() if c[m].get("family_verdict") in _MARK]
        held.append(f"{m}: {', '.join(marked) if marked else 'none'}")
    how = (f"Benjamini-Hochberg over the table's {n} comparisons per metric, q < {alpha:g}" if rule == "bh" else
           "no correction (eval.slice_verdicts.correction: none)")
    return f"Marks that hold with {how}: " + "; ".join(held) + "."


def _mean_ci(values: np.ndarray, n_boot: int, seed: int, confidence: float) -> dict[str, float | None]:
    """Grand mean of a (seeds x utts) matrix with a two-level bootstrap interval."""
    keep = np.isfinite(values).all(axis=0)
    v = values[:, keep]
    if not v.size:
        return {"mean": None, "ci_low": None, "ci_high": None}
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    for lo in range(0, n_boot, BOOTSTRAP_BLOCK):
        r = min(n_boot, lo + BOOTSTRAP_BLOCK) - lo
        utt = rng.integers(0, v.shape[1], size=(r, v.shape[1]))
        sd = rng.integers(0, v.shape[0], size=(r, v.shape[0]))
        means[lo:lo + r] = v[sd[:, :, None], utt[:, None, :]].mean(axis=(1, 2))
    q = (1.0 - confidence) / 2.0
    lo_ci, hi_ci = np.quantile(means, [q, 1.0 - q])
    return {"mean": round(float(v.mean()), 6), "ci_low": round(float(lo_ci), 6), "ci_high": round(float(hi_ci), 6)}


def _median_half_width(report: Mapping[str, Any], metric: str) -> float | None:
    """The median half-width of the vs-baseline intervals: about the smallest difference the matrix resolves."""
    widths = [(c[metric]["ci_high"] - c[metric]["ci_low"]) / 2 for per_budget in report["vs_baseline"].values()
              for c in per_budget.values() if c[metric]["ci_low"] is not None]
    return round(float(np.median(widths)), 6) if widths else None


_MARK = {"better": " +", "worse": " -"}


def _cell(c: Mapping[str, Any], tail: bool = False) -> str:
    """``diff [ci_low, ci_high]`` and a mark when the interval excludes 0 (the worst-tail difference if ``tail``)."""
    d, lo, hi, v = (("tail_diff", "tail_ci_low", "tail_ci_high", "tail_verdict") if tail else
                    ("diff", "ci_low", "ci_high", "verdict"))
    if c[d] is None:
        return "n/a"
    return f"{c[d]:+.3f} [{c[lo]:+.3f}, {c[hi]:+.3f}]{_MARK.get(c.get(v, ''), '')}"


def _contrast_rows(block: Mapping[str, Mapping[str, Any]], metrics: list[str], tail: bool = False) -> list[str]:
    """One table row per comparison and budget: ``| comparison | K | cell per metric |``."""
    return [f"| {name} | {key} | " + " | ".join(_cell(c[m], tail) for m in metrics) + " |"
            for key, per in block.items() for name, c in per.items()]


def _slice_rule(report: Mapping[str, Any], column: str) -> str:
    """How the marks of a per-slice table were decided (``eval.slice_verdicts``)."""
    rule = report["slice_verdicts"]
    alpha = round(1.0 - report["confidence"], 6)
    family = (f"a mark needs q < {alpha:g} after Benjamini-Hochberg over the {column} values of one variant, "
              "budget and metric" if rule["correction"] == "bh" else
              f"a mark needs its own {round(report['confidence'] * 100)}% interval to exclude 0 (no correction)")
    return f"Marks: {family}; slices of fewer than {rule['min_utts']} utterances get none."


def _slice_tables(report: Mapping[str, Any], metric: str, pct: int) -> list[str]:
    """Per slice column, one table of every variant's ``metric`` difference against the baseline by slice value
    and budget (the variants as columns)."""
    lines: list[str] = []
    per_budget = report["slices"]
    first = next(iter(per_budget.values()))  # {variant: {column: {value: stats}}}, the same keys at every budget
    variants = list(first)
    for column in next(iter(first.values()), {}):
        lines += ["", f"## {metric} difference against `{report['baseline']}` per {column} "
                  f"(diff [{pct}% CI], paired; n = utterances in the slice)", "", _slice_rule(report, column), "",
                  f"| {column} | n | K | " + " | ".join(variants) + " |", "|---|---|---|" + "---|" * len(variants)]
        for key, per in per_budget.items():
            for value, stats in per[variants[0]][column].items():
                lines.append(f"| {value} | {stats['n']} | {key} | " + " | ".join(
                    _cell(per[v][column][value][metric]) for v in variants) + " |")
    return lines


def markdown(report: Mapping[str, Any], slice_metrics: list[str] | None = None) -> str:
    """Tables a person reads: one row per variant and budget, one column per headline metric; then, per slice
    column, the ``slice_metrics`` differences by slice value."""
    pct = round(report["confidence"] * 100)
    metrics = report["metrics"]
    head = "| comparison | K | " + " | ".join(f"{m} diff [{pct}% CI]" for m in metrics) + " |"
    rule = "|---|---|" + "---|" * len(metrics)
    lines = [f"# Curation efficacy on {report['split']} ({report['n_utts']} utterances, seeds {report['seeds']})",
             "", "Differences are paired per utterance and pooled over seeds; intervals resample utterances",
             f"and seeds. `+` / `-`: the {pct}% interval excludes 0 (better / worse). The same contrasts as a plot:",
             "`plots/compare/contrasts.png`.", "",
             f"## each strategy against `{report['baseline']}` at equal hours", "", head, rule,
             *_contrast_rows(report["vs_baseline"], metrics), "", _family_line(report, metrics)]
    if any(report["gate"].values()):
        lines += ["", "## the quality gate's effect (same selector, gate on vs off)", "", head, rule,
                  *_contrast_rows(report["gate"], metrics)]
    if any(report.get("pairs", {}).values()):
        lines += ["", "## other paired comparisons (compare.pairs)", "", head, rule,
                  *_contrast_rows(report["pairs"], metrics)]
    lines += ["", f"## worst-{round(report['tail_fraction'] * 100)}% (CVaR) difference against "
              f"`{report['baseline']}`", "", head.replace("diff", "tail diff"), rule,
              *_contrast_rows(report["vs_baseline"], metrics, tail=True)]
    for m in slice_metrics or []:
        if m in metrics and any(report["slices"].values()):
            lines += _slice_tables(report, m, pct)
    tags = list(map(budget_tag, report["budgets"]))
    for m in metrics:
        lines += ["", f"## learning curve: mean {m} per budget", "",
                  "| variant | " + " | ".join(f"K={k}" for k in tags) + " |", "|---|" + "---|" * len(tags)]
        for v, per in report["curve"].items():
            lines.append(f"| {v} | " + " | ".join(
                "n/a" if per[k][m]["mean"] is None else
                f"{per[k][m]['mean']:.3f} [{per[k][m]['ci_low']:.3f}, {per[k][m]['ci_high']:.3f}]"
                for k in tags) + " |")
    for v, why in report.get("not_run", {}).items():
        lines += ["", f"not run: `{v}`: {why}"]
    lines += ["", "resolution (median CI half-width of the comparisons): " + ", ".join(
        f"{m} {w}" for m, w in report["resolution"].items())]
    return "\n".join(lines) + "\n"


def _save(fig: Any, path: Path) -> Path:
    """Lay out, write atomically as PNG and close a report figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)
    return path


def plot_curves(report: Mapping[str, Any], out_dir: Path) -> Path:
    """Metric against budget per variant, with confidence bands (one panel per headline metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = report["metrics"]
    fig, axes = plt.subplots(1, len(metrics), squeeze=False,
                             figsize=(PANEL_WIDTH_INCHES * len(metrics), PANEL_HEIGHT_INCHES))
    budgets = report["budgets"]
    for ax, m in zip(axes[0], metrics, strict=True):
        for v, per in report["curve"].items():
            pts = [per[budget_tag(b)][m] for b in budgets]
            ok = [i for i, p in enumerate(pts) if p["mean"] is not None]
            xs = [budgets[i] for i in ok]
            ax.plot(xs, [pts[i]["mean"] for i in ok], marker="o", label=v)
            ax.fill_between(xs, [pts[i]["ci_low"] for i in ok], [pts[i]["ci_high"] for i in ok], alpha=0.15)
        ax.set_xlabel("budget (fraction of the pool's hours)")
        ax.set_title(m)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle(f"{report['split']} ({report['n_utts']} utts, seeds {report['seeds']}): "
                 f"{round(report['confidence'] * 100)}% bands over utterances and seeds\n"
                 "(each mean on its own: the paired differences are in contrasts.png)")
    return _save(fig, out_dir / "learning_curve.png")


VERDICT_COLOURS = {"better": "tab:green", "worse": "tab:red"}
"""Marker colour of a contrast whose interval excludes 0 (grey otherwise)."""
NEUTRAL_COLOUR = "tab:gray"
ROW_HEIGHT_INCHES = 0.28
"""Height per contrast row of the contrasts plot (plus one panel height of margins)."""


def contrast_rows(report: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """``(section, "<comparison> @ K=<k>", figures per metric)`` of every paired contrast of the report, in the
    Markdown's order: each variant against the baseline, the gate pairs, then ``compare.pairs``."""
    out = []
    for section, key in ((f"vs {report['baseline']}", "vs_baseline"), ("gate on vs off", "gate"),
                         ("other pairs", "pairs")):
        for k, cells in (report.get(key) or {}).items():
            for name, figures in cells.items():
                out.append((section, f"{name} @ K={k}", figures))
    return out


def plot_contrasts(report: Mapping[str, Any], out_dir: Path) -> Path:
    """The paired differences of every contrast with their intervals, one panel per headline metric (a forest
    plot: what the tables say, at a glance); green / red where the interval excludes 0 (better / worse, by the
    metric's direction), grey otherwise."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, rows = report["metrics"], contrast_rows(report)
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, sharey=True,
                             figsize=(PANEL_WIDTH_INCHES * len(metrics),
                                      PANEL_HEIGHT_INCHES + ROW_HEIGHT_INCHES * len(rows)))
    ys = np.arange(len(rows))[::-1]
    for ax, m in zip(axes[0], metrics, strict=True):
        for y, (_, _, figures) in zip(ys, rows, strict=True):
            f = figures.get(m) or {}
            if f.get("diff") is None:
                continue
            colour = VERDICT_COLOURS.get(f.get("verdict"), NEUTRAL_COLOUR)
            ax.errorbar(f["diff"], y, xerr=[[f["diff"] - f["ci_low"]], [f["ci_high"] - f["diff"]]], fmt="o",
                        color=colour, capsize=2)
        ax.axvline(0.0, color="k", linewidth=0.8)
        for y, (prev, cur) in zip(ys[1:], zip(rows[:-1], rows[1:], strict=True), strict=True):
            if prev[0] != cur[0]:  # a rule between sections
                ax.axhline(y + 0.5, color="k", linewidth=0.5, linestyle=":")
        direction = "higher" if METRICS.get(m).higher_is_better else "lower"
        ax.set_title(f"{m} ({direction} is better)")
        ax.set_xlabel("paired difference")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(ys, [f"{label} ({section})" for section, label, _ in rows], fontsize="small")
    fig.suptitle(f"{report['split']} ({report['n_utts']} utts, seeds {report['seeds']}): paired differences, "
                 f"{round(report['confidence'] * 100)}% intervals over utterances and seeds")
    return _save(fig, out_dir / "contrasts.png")


def run_report(params: CompareParams, cfg: dict, out: Path, md: Path, plots: Path) -> int:
    """Load every run, write metrics/compare.json, the Markdown table, the contrasts and learning-curve plots."""
    ev = load_section("eval", cfg=cfg, plugins=False)  # bootstrap and tail only, no metric checks
    root = load_section("data", cfg=cfg).root
    not_run = skipped_variants(params, lambda v, b, s: eval_dir(root, v, b, s))
    if params.baseline in not_run:
        raise ReportError(f"the baseline variant '{params.baseline}' was not run: {not_run[params.baseline]}")
    if not_run:
        params = dataclasses.replace(
            params, variants={v: o for v, o in params.variants.items() if v not in not_run},
            gate_pairs={g: u for g, u in params.gate_pairs.items() if g not in not_run and u not in not_run},
            pairs={a: b for a, b in params.pairs.items() if a not in not_run and b not in not_run})
    runs = load_runs(params, lambda v, b, s: eval_dir(root, v, b, s))
    report = build_report(params, runs, ev.bootstrap.n_boot, ev.bootstrap.seed, ev.bootstrap.confidence,
                          ev.tail_fraction, ev.slice_verdicts.min_utts, ev.slice_verdicts.correction)
    report["not_run"] = not_run
    write_json(out, report)
    text = markdown(report, params.slice_metrics or params.headline_metrics[:1])
    with atomic_path(md) as tmp:
        tmp.write_text(text, encoding="utf-8")
    plot_curves(report, plots)
    plot_contrasts(report, plots)
    print(text)
    return 0

