"""``curator eval`` / ``python -m curator.evaluation``: enhance dev/test, score it, summarise and plot.

Writes per-utterance scores (Parquet); ``metrics/eval.json``, the headline: per split and metric the paired
means of enhanced output and noisy input over the same utterances, the improvement with its bootstrap
confidence interval, the tail (mean of the worst ``eval.tail_fraction``), the URGENT rank of enhanced vs noisy,
and the metrics that could not run with the reason; ``metrics/eval_slices.json``, the same paired figures per
slice (distortion, rate, language, input-SNR bin); and per-slice bar charts (PNG + the CSV behind them).

With ``--enhanced``, the outputs another run wrote (``curator enhance``, the official inference, any system that
writes an ``inf.scp``) are scored instead of a model's, on the same rows, so ``curator compare`` can set any system
beside this project's; their ``output_to_input_db`` measures the files as written (after their own peak
normalisation).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from curator.audio import AudioError
from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.manifest import ManifestError
from curator.evaluation.enhance import Enhancer, ModelEnhancer, PrecomputedEnhancer
from curator.evaluation.evaluate import score_split, select_rows
from curator.evaluation.metrics import METRICS, MetricOptions, split_available
from curator.evaluation.params import SNR_BIN_COLUMN
from curator.evaluation.plots import plot_slices, slice_table
from curator.evaluation.report import slice_summary, snr_bins, summarise_split
from curator.io import atomic_path, write_json
from curator.training.backends.official import OfficialBaselineError, OfficialEnhancer
from curator.training.checkpoint import CheckpointError, is_checkpoint

DEFAULT_OUT = "metrics/eval.json"
DEFAULT_SLICES = "metrics/eval_slices.json"
DEFAULT_PLOTS = "metrics/plots/eval"
PER_UTT_DIR = "data/eval"
MAX_SKIPPED_LISTED = 20  # skipped utterances named in eval.json (all are counted)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  curator eval --ckpt models/mini_bsrnn/best.ckpt eval.splits=[dev,test] eval.max_utts=20\n"
               "  curator eval --enhanced exp/official_test/inf.scp --out metrics/official.json "
               "--slices_out metrics/official_slices.json --plots metrics/plots/official",
    )
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    source = ap.add_mutually_exclusive_group()
    source.add_argument("--ckpt", default=None, help="checkpoint (default: models/<train.exp_name>/best.ckpt)")
    source.add_argument("--enhanced", default=None,
                        help="score outputs another run wrote instead of running a model: an inf.scp (uid path), "
                             "or the folder holding one (`curator enhance`, the official inference.py)")
    ap.add_argument("--out", default=DEFAULT_OUT, help="summary metrics JSON (default: %(default)s)")
    ap.add_argument("--per_utt", default=None,
                    help=f"per-utterance Parquet (default: {PER_UTT_DIR}/<checkpoint folder>/per_utt.parquet)")
    ap.add_argument("--slices_out", default=DEFAULT_SLICES,
                    help="per-slice paired figures JSON (default: %(default)s)")
    ap.add_argument("--plots", default=DEFAULT_PLOTS, help="folder for slice plots (default: %(default)s)")
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. eval.max_utts=10")
    return ap


def make_enhancer(ckpt: Path, cfg: dict[str, Any], device: str) -> Enhancer:
    """This project's checkpoints run in-process; anything else is handed to the official baseline."""
    if is_checkpoint(ckpt):
        return ModelEnhancer(ckpt, device)
    return OfficialEnhancer(ckpt, load_section("train", cfg=cfg).official)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_params(args.config, args.overrides)
        params = load_section("eval", cfg=cfg)
        data = load_section("data", cfg=cfg)
        if args.enhanced:
            name = Path(args.enhanced).name if Path(args.enhanced).is_dir() else Path(args.enhanced).parent.name
        else:
            ckpt = Path(args.ckpt or Path("models") / cfg["train"]["exp_name"] / "best.ckpt")
            if not ckpt.is_file():
                raise CheckpointError(f"checkpoint '{ckpt}' does not exist; run the train stage (`dvc repro train`)")
            name = ckpt.parent.name
        per_utt_path = Path(args.per_utt or Path(PER_UTT_DIR) / name / "per_utt.parquet")
        splits = {s: select_rows(str(data.manifest_path(s)), params.max_utts) for s in params.splits}
        empty = [s for s, rows in splits.items() if rows.empty]
        if empty:
            raise ManifestError(f"split(s) {', '.join(empty)} have no rows to evaluate; check data.dataset and the manifest stage")
        torch.set_num_threads(params.num_threads)
        torch.backends.mkldnn.enabled = params.onednn  # False: ATen's own kernels, the same outputs on every CPU
        enhancer = PrecomputedEnhancer(args.enhanced) if args.enhanced else make_enhancer(ckpt, cfg, params.device)
    except (ConfigError, CheckpointError, ManifestError, OfficialBaselineError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = MetricOptions(device=params.device, batch_size=params.metric_batch_size, weights=params.weights,
                            cacc_reference=params.cacc_reference,
                            lid_reference=params.lid_reference)
    metrics, unavailable = split_available([METRICS.get(m) for m in params.metrics], options)
    for name, reason in unavailable.items():
        print(f"eval: metric '{name}' unavailable, skipped: {reason}", file=sys.stderr)
    stand_ins = {m.name: s for m in metrics if (s := m.substitute(options))}
    for name, substitute in stand_ins.items():
        print(f"eval: metric '{name}' runs {substitute}", file=sys.stderr)
    if not metrics:
        print("error: no metric of eval.metrics can run here (reasons above)", file=sys.stderr)
        return 2
    bootstrap = {"n_boot": params.bootstrap.n_boot, "seed": params.bootstrap.seed,
                 "confidence": params.bootstrap.confidence}
    pool_ctx: Any = ProcessPoolExecutor(params.num_workers) if params.num_workers > 1 else nullcontext()
    frames, summary, slices = [], {}, {}
    try:
        with pool_ctx as pool:
            executor: Executor | None = pool
            for split, rows in splits.items():
                df, skipped = score_split(rows, enhancer, metrics, params.peak, params.silent_reference_peak,
                                          params.chunk_utts, executor, desc=f"eval {split}", options=options)
                if df.empty:
                    raise AudioError(f"no utterance of split '{split}' could be read ({len(skipped)} skipped)")
                df.insert(0, "split", split)
                df[SNR_BIN_COLUMN] = snr_bins(df.get("snr_db", pd.Series(index=df.index, dtype=float)),
                                              params.snr_bins_db)
                frames.append(df)
                summary[split] = summarise_split(df, metrics, params.tail_fraction, bootstrap, stand_ins)
                summary[split]["n_skipped"] = len(skipped)
                summary[split]["skipped_examples"] = skipped[:MAX_SKIPPED_LISTED]
                slices[split] = slice_summary(df, metrics, params.slices, params.tail_fraction, bootstrap,
                                              {"min_utts": params.slice_verdicts.min_utts,
                                               "correction": params.slice_verdicts.correction})
    except (AudioError, OfficialBaselineError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with atomic_path(per_utt_path) as tmp:
        pd.concat(frames, ignore_index=True).to_parquet(tmp, index=False)
    write_json(args.out, {**summary, "unavailable_metrics": unavailable})
    write_json(args.slices_out, slices)
    names = [m.name for m in metrics]
    table = slice_table(slices, names)
    drawn = [m for m in params.plot_metrics if m in names]
    plots_dir = Path(args.plots)
    with atomic_path(plots_dir / "slices.csv") as tmp:
        table.to_csv(tmp, index=False)
    pngs = plot_slices(table, drawn, plots_dir) if drawn else []
    for split, block in summary.items():
        print(f"eval {split} ({block['n_utts']} utts, enhanced vs noisy on the same utterances):")
        for m in names:
            b = block["metrics"][m]
            print(f"  {m:18s} {b['enhanced']} vs {b['noisy']}: {b['improvement']:+} "
                  f"[{b['ci_low']}, {b['ci_high']}] {b['verdict']}" if b["improvement"] is not None
                  else f"  {m:18s} no utterance scored on both sides")
    print(f"eval: wrote {args.out}, {per_utt_path}, {len(pngs)} plots in {plots_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
