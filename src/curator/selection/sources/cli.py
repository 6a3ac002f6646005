"""``python -m curator.selection.sources``: choose the source recordings the training pairs are simulated from.

Reads ``source_select`` from --config, the source manifest (--sources), the source scores (--scores) and, for
``source_select.hardness: pairs``, the pair-level scores (--pair-scores: the mean loss of the pairs simulated
from a source is its hardness). Writes the selected-sources CSV with its ``<stem>_meta.json`` sidecar
(``contract/source_selection.py``) and ``metrics/source_select.json``. Strategies (``source_select.name``): the
pair-level ones and ``list``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence

from curator.config import DEFAULT_PARAMS, ConfigError, check_choice, load_params, load_section
from curator.contract.scores import read_schema, read_scores
from curator.contract.source_scores import read_source_scores
from curator.contract.source_selection import write_selection
from curator.contract.sources import read_sources
from curator.contract.versions import ContractError
from curator.determinism import pin_threads
from curator.io import sha256_file, write_json
from curator.selection.params import recorded_config
from curator.selection.registry import SELECTORS
from curator.selection.sources.params import LIST_SELECTOR, LISTS_DIR, strategy_reads, tracked_list
from curator.selection.sources.select import SourceSelectionError, read_id_list, select_sources

log = logging.getLogger("curator.selection.sources")

DEFAULT_METRICS = "metrics/source_select.json"
PAIR_COLUMNS = ("speech_uid", "loss_proxy", "status", "speech_free")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m curator.selection.sources", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("example: python -m curator.selection.sources --config params.yaml --sources "
                "data/manifests/mini/sources.jsonl --scores data/scores/source_scores.parquet --pair-scores "
                "data/scores/train_scores.parquet --out data/curated/source_selection/selected_sources.csv "
                "source_select.K_hours=0.5"))
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file with `source_select` (default: %(default)s)")
    ap.add_argument("--sources", required=True, help="source manifest (JSONL, the sources stage)")
    ap.add_argument("--scores", required=True, help="source scores Parquet (the source_score stage)")
    ap.add_argument("--pair-scores", default=None, help="pair-level scores Parquet; its rows' speech_uid and "
                    "loss_proxy give each source's hardness (required by cvar)")
    ap.add_argument("--out", required=True, help="selected-sources CSV to write; the sidecar is <stem>_meta.json")
    ap.add_argument("--metrics", default=DEFAULT_METRICS, help="metrics JSON to write (default: %(default)s)")
    ap.add_argument("overrides", nargs="*", help="dotted overrides of --config, e.g. source_select.K_hours=1")
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
    except (ConfigError, ContractError, SourceSelectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    cfg = load_params(args.config, args.overrides)
    params = load_section("source_select", args.config, cfg=cfg)
    check_choice("source_select.name", params.name, [*SELECTORS.names(), LIST_SELECTOR])
    for flag, path in (("--sources", args.sources), ("--scores", args.scores), ("--pair-scores", args.pair_scores)):
        if path is not None and not os.path.isfile(path):
            raise SourceSelectionError(f"{flag} '{path}' does not exist; run the stage that writes it first")
    manifest = read_sources(args.sources)
    if not (manifest["kind"] == "speech").any():  # a dataset without source lists: an empty selection, said so
        import pandas as pd

        from curator.contract.source_selection import COLUMNS

        note = (f"source manifest '{args.sources}' has no speech sources (the dataset lists none): nothing selected, "
                "source-level curation is unavailable")
        inputs = {"sources": args.sources, "scores": args.scores}
        write_selection(args.out, pd.DataFrame(columns=list(COLUMNS)),
                        {"config": {"source_select": recorded_config(params, strategy_reads(params.name))}, "n_selected": 0,
                         "hours_selected": 0.0, "unavailable": note,
                         "inputs": {k: {"path": v, "sha256": sha256_file(v)} for k, v in inputs.items()}})
        write_json(args.metrics, {"n_selected": 0, "hours_selected": 0.0, "unavailable": note})
        log.warning(note)
        return 0
    scores = read_source_scores(args.scores)
    pairs = None
    if args.pair_scores is not None and params.hardness == "pairs":
        names = read_schema(args.pair_scores).names
        pairs = read_scores(args.pair_scores, columns=[c for c in PAIR_COLUMNS if c in names])
    id_list = None
    if params.name == LIST_SELECTOR:
        id_list = read_id_list(params.list.path)
        if not tracked_list(params.list.path):
            log.warning("source_select.list.path '%s' is outside %s/, which the stage lists as a DVC dependency: "
                        "an edit of that file will not rerun the selection; move it under %s/", params.list.path,
                        LISTS_DIR, LISTS_DIR)
    result = select_sources(params, manifest, scores, pairs, id_list,
                            where={"scores": args.scores, "pair_scores": str(args.pair_scores),
                                   "list": str(params.list.path)})
    inputs = {"sources": args.sources, "scores": args.scores, "pair_scores": args.pair_scores,
              "list": params.list.path if params.name == LIST_SELECTOR else None}
    meta = {
        "config": {"source_select": recorded_config(params, strategy_reads(params.name))},
        "inputs": {k: {"path": v, "sha256": sha256_file(v)} if v is not None else None for k, v in inputs.items()},
        "n_selected": result.metrics["n_selected"], "hours_selected": result.metrics["hours_selected"],
        "rows_per_kind": result.frame["kind"].value_counts().sort_index().to_dict(),
        **result.details,
    }
    write_selection(args.out, result.frame, meta)
    write_json(args.metrics, result.metrics)
    log.info("%s: %d speech sources, %.3f of %.3f h; %d noise/wind/rir kept, in %.1f s -> %s", params.name,
             result.metrics["n_selected"], result.metrics["hours_selected"], params.K_hours,
             int((result.frame["kind"] != "speech").sum()), time.perf_counter() - start, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
