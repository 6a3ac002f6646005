"""``python -m curator.selection`` / ``curator select``: pick the curated training subset from the scores.

Reads ``select`` and ``data.filters`` from --config, the quotas from --quotas (params.yaml's select.quotas or a
standalone quotas YAML), writes the curated CSV (utt_id, hours, slice, reason, order, in_quota, carried
columns) with its ``<stem>_meta.json`` sidecar, ``metrics/select.json`` and the plots. --truth (the dataset's
``utt_id,imperfect,defect`` file) is read only after selection, to report the share of imperfect references.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.curated import meta_path
from curator.determinism import pin_threads
from curator.io import atomic_path, sha256_file, write_json
from curator.selection.base import Selection
from curator.selection.params import recorded_config
from curator.selection.pool import PoolError
from curator.selection.quotas import load_quotas
from curator.selection.registry import SELECTORS, build
from curator.selection.report import (
    TruthError,
    build_meta,
    build_metrics,
    imperfect_share,
    read_truth,
    tail_stats,
)

log = logging.getLogger("curator.selection")

DEFAULT_SCORES = "data/scores/train_scores.parquet"
DEFAULT_METRICS = "metrics/select.json"
DEFAULT_PLOTS = "metrics/plots/select"
CSV_FLOAT_FORMAT = "%.9g"
CSV_BLOCK_ROWS = 65_536
"""Rows of the curated CSV formatted and written at a time (bounds the strings held next to the frame)."""


def write_csv(frame: pd.DataFrame, f, float_format: str = CSV_FLOAT_FORMAT) -> None:  # noqa: ANN001 (text file)
    """``frame.to_csv(f, index=False, float_format=float_format)``, byte for byte, with the float columns formatted
    by one list comprehension each instead of pandas' per-value formatter (1.9 s -> 1.4-1.7 s at 280k rows; the
    rest is pandas' C row writer, which a plain ``csv.writer`` does not beat).

    pandas writes a numpy float value ``v`` as ``float_format % v`` and a NaN as the empty ``na_rep``; the columns
    formatted here are passed on as strings, which ``to_csv`` writes unchanged. Rows go out in blocks of
    CSV_BLOCK_ROWS (the header with the first), so the formatted strings of only one block are held at a time.
    """
    for lo in range(0, max(len(frame), 1), CSV_BLOCK_ROWS):
        block = frame.iloc[lo:lo + CSV_BLOCK_ROWS]
        out = {}
        for name, col in block.items():
            if isinstance(col.dtype, np.dtype) and col.dtype.kind == "f":
                values = col.to_numpy()
                text = np.array([float_format % v for v in values.tolist()], dtype=object)
                text[np.isnan(values)] = ""
                col = pd.Series(text, index=col.index, dtype=object)
            out[name] = col
        pd.DataFrame(out, index=block.index, columns=block.columns).to_csv(f, index=False, header=lo == 0)


def outputs(sel: Selection, csv_path: Path, truth: pd.DataFrame | None) -> dict[str, object]:
    """What the outputs need from the selection alone: the curated CSV (written to ``csv_path``), the tail
    figures, the imperfect-reference share and the plots' files (as bytes)."""
    from curator.selection.plots import render_plots

    tails = tail_stats(sel)
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        write_csv(sel.frame(), f)
    return {"tails": tails, "imperfect": imperfect_share(sel, truth),
            "plots": render_plots(sel, tails["var_pool"])}


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
        # BLAS on one thread for the whole run, reports included: OpenBLAS splits a long dot product's sum over
        # its threads, so a hours-weighted mean over a million rows would otherwise differ in its last bits
        # between machines with different core counts (the selection's own products run in fixed blocks)
        with pin_threads(1):
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
    selector = build(params.name, params=params, filters=filters, quotas=quotas)

    start = time.perf_counter()
    # the scores file's hash is only needed for the sidecar: a second thread computes it meanwhile (hashlib and
    # file reads release the GIL), so its seconds (about 1 s per GB) are off the critical path
    hashing = ThreadPoolExecutor(max_workers=2)
    scores_sha256 = hashing.submit(sha256_file, args.scores)
    # matplotlib (about 0.5 s of imports) loads meanwhile too, while the pool is read
    hashing.submit(lambda: importlib.import_module("curator.selection.plots").load_matplotlib())
    # and the ground truth (only read after the selection; a bad file still stops the run before it)
    truth_read = hashing.submit(read_truth, args.truth)
    hashing.shutdown(wait=False)
    pool = selector.load(args.scores)
    truth = truth_read.result()
    log.info("pool: %d rows, %.2f h in %d slices (%s)", pool.n, pool.hours.sum(), pool.n_slices,
             ", ".join(f"{k}: {v}" for k, v in sorted(pool.excluded.items())) or "nothing excluded")
    # the CSV, the tail figures and the plots need only the selection: they are prepared while the exact
    # diversity check runs on other threads (the CSV into its temporary file), and redone if the check changed
    # the selection
    out = Path(args.out)
    with atomic_path(out) as csv_tmp:
        staged: dict[str, object] = {}
        sel = selector.run(pool, while_checking=lambda provisional: staged.update(outputs(provisional, csv_tmp,
                                                                                                 truth)))
        if sel.fill.repaired or not staged:
            staged = outputs(sel, csv_tmp, truth)
        tails = staged["tails"]
        metrics = build_metrics(sel, truth, tails, imperfect=staged["imperfect"])
        config = {"select": recorded_config(params, selector.reads), "data.filters": dataclasses.asdict(filters), "quotas": quotas}
        meta = build_meta(sel, metrics, config, scores_sha256.result(), args.truth)
    write_json(meta_path(out), meta)
    write_json(args.metrics, metrics)
    from curator.selection.plots import write_rendered

    write_rendered(staged["plots"], args.plots_dir)
    if args.timings:
        check = sel.fill.check
        write_json(args.timings, {"wall_seconds": round(time.perf_counter() - start, 3),
                                  "check_seconds": round(check.seconds, 3) if check is not None else None})
    log.info("%s: selected %d utterances, %.3f of %.3f h budget, in %.1f s -> %s", params.name,
             metrics["n_selected"], metrics["hours_selected"], sel.plan.budget, time.perf_counter() - start, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
