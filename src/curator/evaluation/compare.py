"""``curator compare`` / ``python -m curator.evaluation.compare``: is one curated subset's model better than another's?

Each SYSTEM is a per-utterance Parquet file (``data/eval/<exp>/per_utt.parquet``), an eval folder holding one, or a
DVC experiment name or git revision (its ``per_utt.parquet`` is read from the DVC cache at that revision). Every
system is compared with the baseline (the first, or ``--baseline``) on the utterances BOTH scored: per metric the
paired mean difference with a seeded bootstrap confidence interval, the win rate, the difference of the worst
``tail`` fraction (CVaR), per-slice differences and a verdict ("better", "worse", "no evidence"). The official
URGENT ranking of all systems (noisy input as an anchor row) closes the report.

Markdown goes to stdout (120 columns), JSON and a PNG (differences with their intervals) to files.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.evaluation.metrics import METRICS
from curator.evaluation.paired import PairedStats, mark_family, paired_stats
from curator.evaluation.ranking import official_rank
from curator.evaluation.report import NOISY_PREFIX, paired_block
from curator.evaluation.slicing import present, slice_masks
from curator.io import atomic_path, write_json

NOISY_SYSTEM = "noisy_input"
MARKED = ("better", "worse")
PER_UTT = "per_utt.parquet"
EXP_REFS = "refs/exps/"
DPI = 110
PANEL_WIDTH_INCHES = 3.2
ROW_HEIGHT_INCHES = 0.45
WIDTH = 120
"""Columns of the Markdown report (a terminal of 120 columns shows it unbroken)."""
SLICE_METRICS_SHOWN = 3
"""Metrics listed per slice value in the Markdown (all of them are in the JSON)."""


class CompareError(ValueError):
    """Systems that cannot be compared; the message names the system and what to do."""


@dataclass
class System:
    name: str
    frame: pd.DataFrame


def _git(*args: str) -> str | None:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def resolve_rev(name: str) -> str | None:
    """A git commit for a revision or a DVC experiment name (``refs/exps/.../<name>``); None if neither."""
    sha = _git("rev-parse", "--verify", "--quiet", f"{name}^{{commit}}")
    if sha:
        return sha
    refs = _git("for-each-ref", "--format=%(refname) %(objectname)", EXP_REFS) or ""
    hits = [line.split()[1] for line in refs.splitlines() if line.split()[0].rsplit("/", 1)[-1] == name]
    return hits[0] if len(hits) == 1 else None


def _read_at_rev(sha: str, name: str) -> pd.DataFrame:
    """The eval stage's per-utterance Parquet of the experiment at ``sha`` (through DVC's cache)."""
    import dvc.api

    text = _git("show", f"{sha}:{DEFAULT_PARAMS}")
    if text is None:
        raise CompareError(f"revision '{name}' has no {DEFAULT_PARAMS}")
    params = yaml.safe_load(text)
    path = f"{params['data'].get('root', 'data')}/eval/{params['train']['exp_name']}/{PER_UTT}"
    try:
        with dvc.api.open(path, rev=sha, mode="rb") as f:
            return pd.read_parquet(io.BytesIO(f.read()))
    except Exception as exc:  # dvc raises many types here (missing cache, path not an output, ...)
        raise CompareError(f"cannot read {path} of '{name}' ({sha[:8]}): {exc}; run `dvc exp apply {name}` and "
                           f"`dvc repro eval`, or `dvc pull`") from exc


def load_system(spec: str) -> System:
    """``[name=]path-or-rev``: a Parquet file, an eval folder, or a DVC experiment / git revision."""
    name, _, target = spec.rpartition("=") if "=" in spec else ("", "", spec)
    path = Path(target)
    if path.is_dir() and (path / PER_UTT).is_file():
        path = path / PER_UTT
    if path.is_file():
        return System(name or path.parent.name or path.stem, pd.read_parquet(path))
    sha = resolve_rev(target)
    if sha is None:
        raise CompareError(f"system '{spec}' is neither a {PER_UTT} file, an eval folder, nor a git revision or "
                           "DVC experiment name (see `dvc exp show`)")
    return System(name or target, _read_at_rev(sha, target))


def align(systems: Sequence[System], split: str) -> tuple[list[pd.DataFrame], dict[str, int]]:
    """Each system's rows of ``split`` on the utterances every system scored, in one utt_id order."""
    frames = []
    for s in systems:
        if "split" not in s.frame.columns or "utt_id" not in s.frame.columns:
            raise CompareError(f"system '{s.name}' has no split/utt_id columns: is it an eval per_utt.parquet?")
        part = s.frame[s.frame["split"] == split]
        if part.empty:
            raise CompareError(f"system '{s.name}' has no rows for split '{split}'")
        frames.append(part.drop_duplicates("utt_id").set_index("utt_id"))
    common = sorted(set.intersection(*(set(f.index) for f in frames)))
    if not common:
        raise CompareError(f"the systems share no utterance of split '{split}'")
    dropped = {s.name: len(f) - len(common) for s, f in zip(systems, frames, strict=True)}
    return [f.loc[common] for f in frames], dropped


def compare(systems: Sequence[System], baseline: str, split: str, metrics: Sequence[str] | None,
            slices: Sequence[str], n_boot: int, seed: int, confidence: float, tail: float, min_slice_utts: int,
            correction: str) -> dict[str, Any]:
    """The whole comparison as a JSON-able dict (see the module docstring). Per-slice verdicts follow
    ``eval.slice_verdicts`` (``min_slice_utts``, ``correction``): per system, slice column and metric, the
    column's values are one family (:func:`curator.evaluation.paired.mark_family`)."""
    names = [s.name for s in systems]
    if len(set(names)) != len(names):
        raise CompareError(f"two systems share a name ({names}); name them, e.g. cvar=data/eval/a")
    if baseline not in names:
        raise CompareError(f"baseline '{baseline}' is not one of the systems: {', '.join(names)}")
    frames, not_shared = align(systems, split)
    by_name = dict(zip(names, frames, strict=True))
    shared = [m for m in METRICS.names() if all(m in f.columns for f in frames)]
    chosen = [m for m in (metrics or shared) if m in shared]
    if not chosen:
        raise CompareError(f"the systems share none of the metrics {list(metrics or shared)}")
    base = by_name[baseline]
    out: dict[str, Any] = {"split": split, "baseline": baseline, "n_common": len(base),
                           "rows_not_shared": not_shared, "confidence": confidence, "tail_fraction": tail,
                           "n_boot": n_boot, "seed": seed,
                           "slice_verdicts": {"min_utts": min_slice_utts, "correction": correction}, "systems": {}}

    def stats(a: pd.Series, b: pd.Series, metric: str) -> PairedStats:
        return paired_stats(a.to_numpy(np.float64), b.to_numpy(np.float64), METRICS.get(metric).higher_is_better,
                            n_boot, seed, confidence, tail)

    for name, frame in by_name.items():
        if name == baseline:
            continue
        entry: dict[str, Any] = {"metrics": {m: _block(stats(frame[m], base[m], m)) for m in chosen},
                                 "slices": {}}
        for key in present(frame, slices):
            entry["slices"][key] = {
                v: {"n": int(idx.sum()), **{m: _block(stats(frame.loc[idx, m], base.loc[idx, m], m)) for m in chosen}}
                for v, idx in slice_masks(frame, key)}
            for m in chosen:
                mark_family([s[m] for s in entry["slices"][key].values()], METRICS.get(m).higher_is_better,
                            confidence, min_slice_utts, correction)
        out["systems"][name] = entry
    out["ranking"] = _ranking(by_name, base, chosen)
    return out


def _block(stats: PairedStats) -> dict[str, Any]:
    return paired_block(stats, "system", "baseline")


def _ranking(by_name: dict[str, pd.DataFrame], base: pd.DataFrame, metrics: Sequence[str]) -> dict[str, Any]:
    means = pd.DataFrame({n: f[metrics].mean() for n, f in by_name.items()}).T
    noisy = [NOISY_PREFIX + m for m in metrics]
    if all(c in base.columns for c in noisy):
        means.loc[NOISY_SYSTEM] = base[noisy].mean().to_numpy()
    try:
        ranking = official_rank(means)
    except ValueError:
        return {"official": None, "reason": "none of the official 2026 metrics is among the compared metrics"}
    table = ranking.table
    return {"official": {s: {"overall": float(table.loc[s, "overall"]),
                             "overall_rank": float(table.loc[s, "overall_rank"])} for s in table.index},
            "missing": {c: list(ms) for c, ms in ranking.missing.items()}}


def _fmt(x: float | None, nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:+.{nd}f}"


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def slice_metrics(result: dict[str, Any], preferred: Sequence[str] = ()) -> list[str]:
    """The metrics a slice line shows: those of ``preferred`` (``compare.headline_metrics``) the comparison has,
    else its first :data:`SLICE_METRICS_SHOWN`."""
    compared = list(next(iter(result["systems"].values()), {"metrics": {}})["metrics"])
    return [m for m in preferred if m in compared][:SLICE_METRICS_SHOWN] or compared[:SLICE_METRICS_SHOWN]


def markdown(result: dict[str, Any], preferred: Sequence[str] = ()) -> str:
    """The report a person reads (at most 120 columns)."""
    pct = round(result["confidence"] * 100)
    tail = round(result["tail_fraction"] * 100)
    lines = [f"# compare on {result['split']}: {result['n_common']} utterances scored by every system, "
             f"baseline `{result['baseline']}`", ""]
    if any(result["rows_not_shared"].values()):
        lines += [f"rows left out (not scored by every system): {result['rows_not_shared']}", ""]
    shown = slice_metrics(result, preferred)
    for name, entry in result["systems"].items():
        lines += [f"## {name} vs {result['baseline']}", "",
                  f"| metric | n | {result['baseline'][:12]} | {name[:12]} | diff [{pct}% CI] | win | "
                  f"worst-{tail}% diff [{pct}% CI] | verdict |",
                  "|---|---|---|---|---|---|---|---|"]
        for m, b in entry["metrics"].items():
            win = "n/a" if b["win_rate"] is None else f"{b['win_rate']:.2f}"
            lines.append(
                f"| {m} | {b['n']} | {_num(b['baseline'])} | {_num(b['system'])} | "
                f"{_fmt(b['improvement'])} [{_fmt(b['ci_low'])}, {_fmt(b['ci_high'])}] | {win} | "
                f"{_fmt(b['tail_improvement'])} [{_fmt(b['tail_ci_low'])}, {_fmt(b['tail_ci_high'])}] | "
                f"{b['verdict']} |")
        for key, values in entry["slices"].items():
            lines += ["", *_wrap(f"per {key}: " + "; ".join(
                f"{v} (n={s['n']}): " + ", ".join(
                    f"{m} {_fmt(s[m]['improvement'], 2)}" + ("*" if s[m]["verdict"] in MARKED else "")
                    for m in shown)
                for v, s in values.items()))]
        lines.append("")
    rule = result["slice_verdicts"]
    lines += _wrap("(diff = system - baseline, paired per utterance; a slice's * = "
                   + (f"q < {round(1 - result['confidence'], 6):g} after Benjamini-Hochberg over the column's values"
                      if rule["correction"] == "bh" else f"its {pct}% interval excludes 0")
                   + f", none under {rule['min_utts']} utterances)")
    rank = result["ranking"]
    if rank.get("official"):
        lines += ["", "## official URGENT ranking (2026 metric set; lower is better)", "",
                  "| system | overall (avg rank) | overall rank |", "|---|---|---|"]
        for s, r in sorted(rank["official"].items(), key=lambda kv: (kv[1]["overall_rank"], kv[1]["overall"])):
            lines.append(f"| {s} | {r['overall']:.3f} | {r['overall_rank']:g} |")
        if rank["missing"]:
            lines += ["", *_wrap("official metrics not computed: " + "; ".join(
                f"{c}: {', '.join(ms)}" for c, ms in rank["missing"].items()))]
    else:
        lines += ["", f"official ranking: {rank.get('reason')}"]
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> None:
    """One panel per metric: each system's paired difference from the baseline with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(result["systems"])
    metrics = list(next(iter(result["systems"].values()))["metrics"]) if systems else []
    if not metrics:
        return
    fig, axes = plt.subplots(1, len(metrics), squeeze=False, sharey=True,
                             figsize=(PANEL_WIDTH_INCHES * len(metrics), 1.5 + ROW_HEIGHT_INCHES * len(systems)))
    for ax, m in zip(axes[0], metrics, strict=True):
        for y, s in enumerate(systems):
            b = result["systems"][s]["metrics"][m]
            if b["improvement"] is None:
                continue
            lo, hi = b["ci_low"] if b["ci_low"] is not None else b["improvement"], b["ci_high"]
            hi = hi if hi is not None else b["improvement"]
            color = {"better": "tab:green", "worse": "tab:red"}.get(b["verdict"], "0.4")
            ax.errorbar(b["improvement"], y, xerr=[[b["improvement"] - lo], [hi - b["improvement"]]], fmt="o",
                        color=color, capsize=3)
        ax.axvline(0.0, color="0.6", lw=1)
        ax.set_title(m)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_yticks(range(len(systems)), systems)
    fig.suptitle(f"{result['split']}: paired difference from {result['baseline']} "
                 f"({round(result['confidence'] * 100)}% CI, n={result['n_common']})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator compare", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  curator compare random=data/eval/random cvar=data/eval/cvar\n"
               "  curator compare exp-random exp-cvar --json metrics/compare.json --png metrics/compare.png\n")
    ap.add_argument("systems", nargs="+", help="[name=]per_utt.parquet | eval folder | DVC experiment | git rev")
    ap.add_argument("--baseline", default=None, help="system every other is compared with (default: the first)")
    ap.add_argument("--split", default="test", help="split to compare on (default: %(default)s)")
    ap.add_argument("--metrics", default=None, help="comma-separated metrics (default: every shared one)")
    ap.add_argument("--config", default=DEFAULT_PARAMS,
                    help="params with eval.bootstrap, eval.tail_fraction, eval.slices, eval.slice_verdicts and "
                         "compare.headline_metrics (the metrics each slice line shows) "
                         "(default: %(default)s)")
    ap.add_argument("--json", type=Path, default=None, help="write the full comparison as JSON")
    ap.add_argument("--png", type=Path, default=None, help="write the differences with their intervals as PNG")
    ap.add_argument("overrides", nargs="*", default=[], help=argparse.SUPPRESS)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if len(args.systems) < 2:
        print("error: give at least two systems to compare", file=sys.stderr)
        return 2
    try:
        cfg = load_params(args.config, args.overrides)
        params = load_section("eval", cfg=cfg)
        headline = load_section("compare", cfg=cfg).headline_metrics if "compare" in cfg else ()
        systems = [load_system(s) for s in args.systems]
        result = compare(systems, args.baseline or systems[0].name, args.split,
                         args.metrics.split(",") if args.metrics else None, params.slices,
                         params.bootstrap.n_boot, params.bootstrap.seed, params.bootstrap.confidence,
                         params.tail_fraction, params.slice_verdicts.min_utts, params.slice_verdicts.correction)
    except (CompareError, ConfigError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(result, headline))
    if args.json is not None:
        write_json(args.json, result)
    if args.png is not None:
        plot(result, args.png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
