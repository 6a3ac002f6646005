"""``python -m curator.datasets``: download | prepare | verify | manifest | all, and sources, for the configured
dataset.

Examples::

    python -m curator.datasets --stage all                          # mini dataset, every split
    python -m curator.datasets --stage sources                      # train sources -> manifests/<dataset>/sources.jsonl
    python -m curator.datasets --stage manifest --split train dataset.mini.n_train=24
    curator prepare                                                 # the DVC prepare stage
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from curator.audio import AudioError
from curator.config import DEFAULT_PARAMS, ConfigError, apply_overrides, load_yaml, parse, section_class
from curator.contract.data import SPLITS
from curator.contract.manifest import ManifestError, write_manifest
from curator.contract.sources import SourceManifestError, write_sources
from curator.datasets.base import DatasetContext, build_dataset
from curator.datasets.kaldi import ListError
from curator.datasets.mini.tts import TTSUnavailableError
from curator.datasets.params import DatasetParams, SimulationParams
from curator.datasets.report import SplitTally
from curator.datasets.simulation.official import OfficialSimulationError
from curator.datasets.simulation.plan import PlanError
from curator.datasets.simulation.render import RenderError
from curator.datasets.sources import DEFAULT_METRICS as SOURCES_METRICS
from curator.datasets.sources import sources_summary
from curator.io import write_json

STAGES = ("download", "prepare", "verify", "manifest")
SOURCES = "sources"
"""The source manifest stage (source-level curation); not part of ``all``, which makes the pair manifests."""
USER_ERRORS = (ConfigError, ListError, ManifestError, SourceManifestError, AudioError, PlanError, RenderError,
               OfficialSimulationError, TTSUnavailableError, KeyError)
"""Errors caused by params, lists or audio: reported in one line (exit code 2) instead of a traceback."""
DEFAULT_METRICS = "metrics/manifest.json"
DATASET_SECTIONS = ("dataset", "simulation")


def load_context(dataset_cfg: str, data_cfg: str, overrides: Sequence[str]) -> DatasetContext:
    """Parse ``dataset`` + ``simulation`` from ``dataset_cfg`` and ``data`` from ``data_cfg``; overrides go
    to whichever file holds their section."""
    mine = [o for o in overrides if o.split(".", 1)[0] in DATASET_SECTIONS]
    if data_cfg == dataset_cfg:
        dcfg = gcfg = apply_overrides(load_yaml(dataset_cfg), overrides)
    else:
        dcfg = apply_overrides(load_yaml(dataset_cfg), mine)
        gcfg = apply_overrides(load_yaml(data_cfg), [o for o in overrides if o not in mine])
    for name, cfg, where in (("dataset", dcfg, dataset_cfg), ("simulation", dcfg, dataset_cfg),
                             ("data", gcfg, data_cfg)):
        if name not in cfg:
            raise ConfigError(f"missing section '{name}' in {where}")
    ctx = DatasetContext(data=parse(section_class("data"), gcfg["data"], "data"),
                         dataset=parse(DatasetParams, dcfg["dataset"], "dataset"),
                         simulation=parse(SimulationParams, dcfg["simulation"], "simulation"))
    return ctx


def build_parser() -> argparse.ArgumentParser:
    """The datasets CLI (flag names follow the user's spec)."""
    ap = argparse.ArgumentParser(prog="python -m curator.datasets", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset_cfg", default=DEFAULT_PARAMS,
                    help="file with the 'dataset' and 'simulation' sections (default: params.yaml)")
    ap.add_argument("--data_cfg", default=DEFAULT_PARAMS, help="file with the 'data' section (default: params.yaml)")
    ap.add_argument("--stage", choices=[*STAGES, SOURCES, "all"], default="all",
                    help="download: fetch (no-op for mini); prepare: make/import audio into data/external/<dataset>; "
                         "verify: checksums, decoding, list lengths; manifest: write data/manifests/<dataset>/*.jsonl "
                         "and metrics/manifest.json; all: those four in that order; sources: write the train source "
                         "recordings to data/manifests/<dataset>/sources.jsonl and metrics/sources.json")
    ap.add_argument("--split", choices=[*SPLITS, "all"], default="all", help="split(s) the manifest stage writes")
    ap.add_argument("--metrics", default=None,
                    help=f"metrics JSON (default: {DEFAULT_METRICS}; {SOURCES_METRICS} for --stage sources)")
    ap.add_argument("--report", default=None, help="also write the verify report as JSON to this path")
    ap.add_argument("overrides", nargs="*", help="dotted overrides, e.g. dataset.mini.n_train=24 simulation.seed=1")
    return ap


def run_manifest(ctx: DatasetContext, splits: Sequence[str], metrics_path: str) -> dict:
    """Import every split, streaming its rows into the manifest (written atomically), then the metrics."""
    ds = build_dataset(ctx)
    summary: dict = {"dataset": ctx.name, "splits": {}}
    for split in splits:
        res, policy = ds.import_split(split)
        tally = SplitTally()
        n = write_manifest(ctx.manifest_path(split), tally.count(res.rows))
        print(f"[{ctx.name}] {split}: {n} utterances -> {ctx.manifest_path(split)}"
              + (f" ({len(res.rejected)} rejected, see {metrics_path})" if res.rejected else ""))
        loud = res.report.get("over_full_scale", {})
        if loud.get("n"):
            print(f"[{ctx.name}] {split}: warning: {loud['n']} float files peak above full scale (largest "
                  f"{loud['max_peak']}: {loud['max_peak_file']}); they are kept as they are, but a PCM copy clips "
                  "them and level-dependent scores (DNSMOS, clipping) read them differently: rescale them if that "
                  "level is not intended", file=sys.stderr)
        summary["splits"][split] = {**res.report,  # the dataset's own figures (filled as its rows streamed)
                                    **tally.summary(res.rejected, ctx.dataset.max_report_examples),
                                    "input_policy": policy.summary(ctx.dataset.max_report_examples)}
    write_json(metrics_path, summary)
    return summary


def run_sources(ctx: DatasetContext, metrics_path: str) -> dict:
    """The train split's source recordings -> the source manifest (atomic, sorted) and its metrics."""
    res = build_dataset(ctx).sources()
    path = ctx.data.sources_manifest_path
    counts = write_sources(path, res.rows)
    summary = sources_summary(ctx.name, str(path), res, ctx.dataset.max_report_examples)
    write_json(metrics_path, summary)
    print(f"[{ctx.name}] sources: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {path}"
          + (f" ({len(res.skipped)} skipped, see {metrics_path})" if res.skipped else ""))
    if "unavailable" in res.report:
        print(f"[{ctx.name}] note: {res.report['unavailable']}", file=sys.stderr)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Run the requested stages; exit code 0 ok, 1 verify found problems, 2 bad params/lists/audio."""
    args = build_parser().parse_args(argv)
    try:
        ctx = load_context(args.dataset_cfg, args.data_cfg, args.overrides)
        ds = build_dataset(ctx)
        if args.stage == SOURCES:
            start = time.perf_counter()
            run_sources(ctx, args.metrics or SOURCES_METRICS)
            print(f"[{ctx.name}] sources took {time.perf_counter() - start:.1f} s")
            return 0
        stages = STAGES if args.stage == "all" else (args.stage,)
        splits = SPLITS if args.split == "all" else (args.split,)
        for stage in stages:
            start = time.perf_counter()
            if stage == "download":
                ds.download()
            elif stage == "prepare":
                ds.prepare()
            elif stage == "verify":
                report = ds.verify()
                if args.report:
                    write_json(args.report, report)
                print(json.dumps(report, indent=1, sort_keys=True) if not report["ok"]
                      else f"[{ctx.name}] verify: ok")
                if not report["ok"]:
                    print(f"error: verify found problems in the {ctx.name} data (report above, files named); the "
                          "manifest stage leaves each such file out and counts it by reason in metrics/manifest.json: "
                          "fix the files, or run `--stage manifest` to build the manifest without them",
                          file=sys.stderr)
                    return 1
            else:
                run_manifest(ctx, splits, args.metrics or DEFAULT_METRICS)
            print(f"[{ctx.name}] {stage} took {time.perf_counter() - start:.1f} s")
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
