"""``python -m curator.selection`` / ``curator select``: pick the curated training subset from the scores.

Reads ``select`` and ``data.filters`` from --config, the quotas from --quotas (params.yaml's select.quotas or a
standalone quotas YAML), writes the curated CSV (utt_id, hours, slice, reason, order, in_quota, carried
columns) with its ``<stem>_meta.json`` sidecar, ``metrics/select.json`` and the plots. --truth (the dataset's
``utt_id,imperfect,defect`` file) is read only after selection, to report the share of imperfect references.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.curated import meta_path
from curator.io import atomic_open, sha256_file, write_json
from curator.selection.pool import PoolError
from curator.selection.quotas import load_quotas
from curator.selection.registry import SELECTORS, build
from curator.selection.report import TruthError, build_meta, build_metrics, read_truth, tail_stats

log = logging.getLogger("curator.selection")

DEFAULT_SCORES = "data/scores/train_scores.parquet"
DEFAULT_METRICS = "metrics/select.json"
DEFAULT_PLOTS = "metrics/plots/select"
CSV_FLOAT_FORMAT = "%.9g"


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator select",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            f"strategies (select.name): {', '.join(SELECTORS.names())}\n"
            "example: python -m curator.selection --config params.yaml "
            "--scores data/scores/train_scores.parquet --quotas params.yaml --out data/curated/pairs/curated_train.csv "
            "select.alpha=0.05"
        ),
    )
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file with `select` and `data.filters` "
                    "(default: %(default)s)")
    ap.add_argument("--scores", default=DEFAULT_SCORES, help="scores Parquet from the score stage (default: %(default)s)")
    ap.add_argument("--quotas", default=None, help="params.yaml (uses select.quotas) or a standalone quotas YAML "
                    "such as `distortion: {reverb: 0.12, noise: 0.14}` (default: --config's select.quotas)")
    ap.add_argument("--truth", default=None, help="optional `utt_id,imperfect,defect` CSV; only used after "
                    "selection, to report the imperfect-reference share (header-only = no ground truth)")
    ap.add_argument("--out", required=True, help="curated CSV to write; the sidecar is <stem>_meta.json")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help="metrics JSON to write (default: %(default)s)")
    ap.add_argument("--plots-dir", default=DEFAULT_PLOTS, help="folder for plot data and PNGs (default: %(default)s)")
    ap.add_argument("--timings", default=None, help="optional JSON for wall-clock figures (total, exact "
                    "diversity check); kept out of the metrics so reruns stay byte-identical")
    ap.add_argument("overrides", nargs="*", help="dotted overrides of --config, e.g. select.alpha=0.05")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return run(args)
    except (ConfigError, PoolError, TruthError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Validate everything, then select and write the outputs (all atomically)."""
    cfg = load_params(args.config, args.overrides)
    params = load_section("select", args.config, cfg=cfg)
    filters = load_section("data", args.config, cfg=cfg).filters
    quotas = (load_quotas(args.quotas, params.slice_key, params.quotas, args.overrides) if args.quotas
              else params.quotas)
    truth = read_truth(args.truth)
    selector = build(params.name, params=params, filters=filters, quotas=quotas)

    start = time.perf_counter()
    pool = selector.load(args.scores)
    log.info("pool: %d rows, %.2f h in %d slices (%s)", pool.n, pool.hours.sum(), pool.n_slices,
             ", ".join(f"{k}: {v}" for k, v in sorted(pool.excluded.items())) or "nothing excluded")
    sel = selector.run(pool)
    tails = tail_stats(sel)
    metrics = build_metrics(sel, truth, tails)
    config = {"select": dataclasses.asdict(params), "data.filters": dataclasses.asdict(filters), "quotas": quotas}
    meta = build_meta(sel, metrics, tails, config, sha256_file(args.scores), args.truth)

    out = Path(args.out)
    with atomic_open(out, newline="") as f:
        sel.frame().to_csv(f, index=False, float_format=CSV_FLOAT_FORMAT)
    write_json(meta_path(out), meta)
    write_json(args.metrics, metrics)
    from curator.selection.plots import write_plots

    write_plots(sel, args.plots_dir, tails["var_pool"])
    if args.timings:
        check = sel.fill.check
        write_json(args.timings, {"wall_seconds": round(time.perf_counter() - start, 3),
                                  "check_seconds": round(check.seconds, 3) if check is not None else None})
    log.info("%s: selected %d utterances, %.3f of %.3f h budget, in %.1f s -> %s", params.name,
             metrics["n_selected"], metrics["hours_selected"], sel.plan.budget, time.perf_counter() - start, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
