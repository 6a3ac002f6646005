"""``python -m curator.evaluation.efficacy``: the curation-efficacy matrix, one DVC stage per cell.

    select --variant V --budget B            curated list of variant V at K = B x the pool's hours (a source-level
                                             variant selects sources, then simulates its pairs at equal hours) in
                                             compare/select/<cell>, its report in compare/select_report/<cell>
    train  --variant V --budget B --seed S   the model of that list, training seed S (compare profile applied)
    eval   --variant V --budget B --seed S   its per-utterance test metrics
    report                                   paired comparison of every variant with the baseline, per budget

Each command runs the project's own stage code (selection, training, evaluation) with the variant's overrides,
so a matrix cell is exactly what `dvc exp run -S ...` would have produced, at a fraction of the bookkeeping.
``dvc.yaml`` lays the cells out with ``matrix:``; adding a seed or a budget to params adds only new cells.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.curated import read_meta
from curator.contract.filters import SECONDS_PER_HOUR, arrow_columns, filter_columns, filter_mask
from curator.contract.scores import STATUS_COLUMN, STATUS_OK, read_schema, read_scores
from curator.contract.versions import ContractError
from curator.evaluation.efficacy.params import (
    LEVEL_KEY,
    SKIPPED_FILE,
    CompareParams,
    cell_list,
    compare_dir,
    eval_dir,
    run_id,
    select_dir,
    select_report_dir,
)
from curator.io import write_json

MODELS_DIR = Path("models/compare")


def pool_hours(scores: str, cfg: dict) -> float:
    """Hours of the status-ok rows that pass ``data.filters``: the pool the budget fractions refer to."""
    data = load_section("data", cfg=cfg)
    seed = load_section("select", cfg=cfg).seed
    wanted = filter_columns(data.filters)
    table = read_scores(scores, columns=[c for c in (*wanted, STATUS_COLUMN) if c in read_schema(scores).names])
    ok = (table[STATUS_COLUMN].to_numpy(zero_copy_only=False) == STATUS_OK)
    columns = arrow_columns(table, data.filters, f"scores file '{scores}'")
    keep, _ = filter_mask(columns, data.filters, seed, ok, where=f"scores file '{scores}'")
    return float(np.asarray(columns["duration_sec"], dtype=np.float64)[keep].sum() / SECONDS_PER_HOUR)


def run_select(args: argparse.Namespace, cfg: dict, params: CompareParams) -> int:
    from curator.selection.cli import main as select_main

    data = load_section("data", cfg=cfg)
    scores = args.scores or str(Path(data.root) / "scores" / "train_scores.parquet")
    hours = pool_hours(scores, cfg)
    out = select_dir(data.root, args.variant, args.budget)
    report = select_report_dir(data.root, args.variant, args.budget)
    print(f"efficacy select: {args.variant} at {args.budget} x {hours:.4f} h pool = {args.budget * hours:.4f} h")
    if params.variant_level(args.variant) == "sources":
        return run_select_sources(args, cfg, params, data, scores, args.budget * hours, out, report)
    return select_main(["--config", args.config, "--scores", scores, "--quotas", args.config,
                        "--truth", str(data.truth_path),
                        "--out", str(out / "curated.csv"), "--metrics", str(report / "select.json"),
                        "--plots-dir", str(report / "plots"), *params.variant_overrides(args.variant),
                        f"select.K_hours={args.budget * hours!r}"])


def run_select_sources(args: argparse.Namespace, cfg: dict, params: CompareParams, data, pair_scores: str,
                       hours: float, out: Path, report: Path) -> int:
    """A source-level cell: select sources for the speech share of ``hours``, then simulate its training pairs.

    The simulation adds speech-free rows at ``source_simulate.speech_free_fraction`` of the rows, so the speech
    budget is ``hours x (1 - fraction)``: the cell's pairs come to the same hours as the pair-level cells'."""
    from curator.datasets.simulation.from_selection import main as simulate_main
    from curator.selection.sources.cli import main as source_select_main

    fraction = load_section("source_simulate", cfg=cfg).speech_free_fraction
    speech_hours = hours * (1.0 - fraction)
    overrides = [o for o in params.variant_overrides(args.variant) if not o.startswith(f"{LEVEL_KEY}=")]
    selection = out / "source_selection" / "selected_sources.csv"
    print(f"efficacy select: {args.variant} is source-level: {speech_hours:.4f} h of speech sources "
          f"(speech-free share {fraction})")
    rc = source_select_main(["--config", args.config, "--sources", str(data.sources_manifest_path),
                             "--scores", str(data.source_scores_path), "--pair-scores", pair_scores,
                             "--out", str(selection), "--metrics", str(report / "select.json"), *overrides,
                             f"source_select.K_hours={speech_hours!r}"])
    if rc != 0:
        return rc
    return simulate_main(["--config", args.config, "--sources", str(data.sources_manifest_path),
                          "--selection", str(selection), "--out", str(out / "sources"),
                          "--metrics", str(report / "simulate.json")])


def run_train(args: argparse.Namespace, cfg: dict, params: CompareParams) -> int:
    from curator.training.cli import main as train_main

    root = load_section("data", cfg=cfg).root
    rid = run_id(args.variant, args.budget, args.seed)
    curated = cell_list(root, args.variant, args.budget, params.variant_level(args.variant))
    why = read_meta(curated) or {}
    if "unavailable" in why:  # a source-level variant on a dataset without source lists: say so, train nothing
        for folder in (MODELS_DIR / rid, compare_dir(root) / "train" / rid):
            write_json(folder / SKIPPED_FILE, {"reason": why["unavailable"]})
        print(f"efficacy train: {rid} not run: {why['unavailable']}", file=sys.stderr)
        return 0
    return train_main(["--config", args.config, "--curated_list", str(curated),
                       "--exp.name", rid, "--models_dir", str(MODELS_DIR), "--live_dir",
                       str(compare_dir(root) / "train" / rid), *params.active_profile().train,
                       f"train.seed={args.seed}"])


def run_eval(args: argparse.Namespace, cfg: dict, params: CompareParams) -> int:
    from curator.evaluation.cli import main as eval_main

    rid = run_id(args.variant, args.budget, args.seed)
    out = eval_dir(load_section("data", cfg=cfg).root, args.variant, args.budget, args.seed)
    skipped = MODELS_DIR / rid / SKIPPED_FILE
    if skipped.is_file():
        write_json(out / SKIPPED_FILE, json.loads(skipped.read_text(encoding="utf-8")))
        return 0
    return eval_main(["--config", args.config, "--ckpt", str(MODELS_DIR / rid / "best.ckpt"),
                      "--out", str(out / "eval.json"), "--per_utt", str(out / "per_utt.parquet"),
                      "--slices_out", str(out / "eval_slices.json"), "--plots", str(out / "plots"),
                      *params.active_profile().eval])


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m curator.evaluation.efficacy", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=("select", "train", "eval", "report"))
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    ap.add_argument("--variant", default=None, help="a key of compare.variants")
    ap.add_argument("--budget", type=float, default=None, help="an entry of compare.budgets")
    ap.add_argument("--seed", type=int, default=None, help="an entry of compare.seeds")
    ap.add_argument("--scores", default=None,
                    help="scores table (select; default: <data.root>/scores/train_scores.parquet)")
    ap.add_argument("--out", default="metrics/compare.json", help="report JSON (report; default: %(default)s)")
    ap.add_argument("--markdown", default="metrics/compare.md", help="report table (report; default: %(default)s)")
    ap.add_argument("--plots", default="metrics/plots/compare", help="report plots (report; default: %(default)s)")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_params(args.config)
        params = load_section("compare", cfg=cfg)
        needs = {"select": ("variant", "budget"), "train": ("variant", "budget", "seed"),
                 "eval": ("variant", "budget", "seed"), "report": ()}[args.command]
        missing = [f"--{k}" for k in needs if getattr(args, k) is None]
        if missing:
            raise ConfigError(f"'{args.command}' needs {', '.join(missing)}")
        if args.command == "select":
            return run_select(args, cfg, params)
        if args.command == "train":
            return run_train(args, cfg, params)
        if args.command == "eval":
            return run_eval(args, cfg, params)
        from curator.evaluation.efficacy.report import run_report

        return run_report(params, cfg, Path(args.out), Path(args.markdown), Path(args.plots))
    except (ConfigError, ContractError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
