"""``curator train`` / ``python -m curator.training``: train on the curated list, keep the best checkpoint.

Writes ``models/<exp>/best.ckpt`` (lowest validation loss), ``models/<exp>/config.yaml`` (the frozen config:
all params after overrides, the curated list's hash and size) and DVCLive curves under ``metrics/train``.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from curator.audio import AudioError
from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.manifest import ManifestError
from curator.io import atomic_open, sha256_file
from curator.training.backends import BACKENDS, NATIVE_BACKEND, NonFiniteTrainingError, TrainJob
from curator.training.backends.official import OfficialBaselineError, start_weights
from curator.training.checkpoint import CheckpointError
from curator.training.data import (
    CuratedListError,
    load_curated_rows,
    load_dynamic_mixing,
    mixing_pool_paths,
    train_manifest_path,
    validation_rows,
)

DEFAULT_CURATED = "data/curated/pairs/curated_train.csv"
DEFAULT_MODELS_DIR = "models"
DEFAULT_LIVE_DIR = "metrics/train"
SECONDS_PER_HOUR = 3600.0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example: curator train --exp.name bsrnn_cvar train.max_steps=50 train.model.options.num_layers=1",
    )
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    ap.add_argument("--curated_list", default=DEFAULT_CURATED, help="CSV with a utt_id column (default: %(default)s)")
    ap.add_argument("--exp.name", dest="exp_name", default=None,
                    help="experiment name: outputs go to <models_dir>/<name>/ (default: train.exp_name)")
    ap.add_argument("--models_dir", default=DEFAULT_MODELS_DIR, help="where experiments live (default: %(default)s)")
    ap.add_argument("--live_dir", default=DEFAULT_LIVE_DIR, help="DVCLive folder (default: %(default)s)")
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. train.max_steps=20")
    return ap


RECORDED_PARAMS = {"data": ("dataset", "root"), "train": None}
"""The params the frozen config records: exactly those the train stages list in dvc.yaml (``data.dataset``,
``data.root``, ``train``, and ``simulation`` where dynamic mixing reads it: :data:`MIXING_PARAMS`), so that editing
another section (``eval``, ``select``) neither changes a training stage's output on a fresh run nor goes unseen by
DVC; the resume fingerprint is the frozen config's text, so a resume state of other params is discarded."""

MIXING_PARAMS = ("simulation",)
"""Sections recorded only when ``train.data.dynamic_mixing`` is on: the mixing settings (SNRs, RIR and noise
draws). Without dynamic mixing training does not read them, and the committed configs stay as they were."""


def recorded_params(cfg: dict[str, Any]) -> dict[str, Any]:
    """:data:`RECORDED_PARAMS` of ``cfg`` (a whole section where the value is None)."""
    return {section: cfg[section] if keys is None else {k: cfg[section][k] for k in keys if k in cfg[section]}
            for section, keys in RECORDED_PARAMS.items() if section in cfg}


def frozen_config(cfg: dict[str, Any], exp_name: str, curated: str, n_rows: int, duplicates: int,
                  manifests: dict[str, str], dynamic_mixing: dict[str, Any] | None = None) -> dict[str, Any]:
    """What models/<exp>/config.yaml records: enough to know exactly what was trained on what (with dynamic
    mixing, the source pool too)."""
    out = {
        "exp_name": exp_name,
        "curated_list": {"path": curated, "sha256": sha256_file(curated), "n_utts": n_rows,
                         "duplicates_dropped": duplicates},
        "manifests": manifests,
        "params": recorded_params(cfg),
    }
    init_from = cfg.get("train", {}).get("init_from")
    if init_from:  # the weights' content, not only their path, decides the run (and its resume fingerprint)
        out["init_from"] = {"path": init_from, "sha256": sha256_file(init_from)}
    official_init = start_weights((cfg.get("train", {}).get("official") or {}).get("overrides") or {})
    if official_init is not None and Path(official_init).is_file():  # a missing one: the backend names it
        out["official_init_from"] = {"path": official_init, "sha256": sha256_file(official_init)}
    if dynamic_mixing is not None:
        out["params"].update({k: cfg[k] for k in MIXING_PARAMS if k in cfg})
        out["dynamic_mixing"] = dynamic_mixing
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = load_params(args.config, args.overrides)
        params = load_section("train", cfg=cfg)
        data = load_section("data", cfg=cfg)
        exp_name = args.exp_name or params.exp_name
        if "/" in exp_name or exp_name.startswith("."):
            raise ConfigError(f"--exp.name {exp_name!r} must be a plain folder name (no '/')")
        if params.init_from is not None and params.backend != NATIVE_BACKEND:
            raise ConfigError(f"'train.init_from' is implemented by the native backend; backend '{params.backend}' "
                              "would ignore it (the official trainer reads its own key: set "
                              "'train.official.overrides: {init_from: <its checkpoint>}' and 'train.init_from: null')")
        if params.init_from is not None and not Path(params.init_from).is_file():
            raise ConfigError(f"'train.init_from' = {params.init_from!r} does not exist: give this project's checkpoint "
                              "or an official baseline one (see `curator import-official --help`)")
        train_manifest = train_manifest_path(args.curated_list, data.manifest_path("train"))
        rows, duplicates = load_curated_rows(train_manifest, args.curated_list)
        val_rows, val_without_target = validation_rows(str(data.manifest_path("dev")), params.data.max_val_utts)
        mixing = None
        if params.data.dynamic_mixing:
            if params.backend != NATIVE_BACKEND:
                raise ConfigError(f"'train.data.dynamic_mixing' is implemented by the native backend; backend "
                                  f"'{params.backend}' trains on the simulated pairs (set it to false)")
            sources_path, selection_path = mixing_pool_paths(args.curated_list, data.sources_manifest_path)
            mixing = load_dynamic_mixing(rows, sources_path, selection_path, load_section("simulation", cfg=cfg),
                                         params.seed)
    except (ConfigError, CuratedListError, ManifestError, AudioError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    exp_dir = Path(args.models_dir) / exp_name
    manifests = {"train": train_manifest, "dev": str(data.manifest_path("dev"))}
    config_text = yaml.safe_dump(frozen_config(cfg, exp_name, args.curated_list, len(rows), duplicates, manifests,
                                               None if mixing is None else mixing.describe()), sort_keys=False)
    job = TrainJob(params=params, train_rows=rows, val_rows=val_rows, exp_dir=exp_dir, live_dir=Path(args.live_dir),
                   config_sha256=hashlib.sha256(config_text.encode("utf-8")).hexdigest(), mixing=mixing,
                   val_without_target=val_without_target)
    writer = job.launcher_zero  # in a data-parallel run every rank runs this; global rank 0 writes the outputs
    if writer:
        with atomic_open(job.config_path) as f:
            f.write(config_text)
        hours = float(rows["duration_sec"].sum()) / SECONDS_PER_HOUR
        print(f"train: {len(rows)} curated utterances ({hours:.2f} h, {duplicates} duplicate ids dropped), "
              f"{len(val_rows)} dev utterances for validation; backend '{params.backend}', experiment '{exp_name}'")
        if val_without_target:
            print(f"train: {val_without_target} dev utterances have no clean reference (speech-free or unpaired rows) and are "
                  "left out of validation, whose loss needs a target (counted as val_without_target)")
        job.best_ckpt.unlink(missing_ok=True)  # a stale checkpoint must never pass for this run's
    try:
        summary = BACKENDS.get(params.backend)(job)
    except (CuratedListError, AudioError, OfficialBaselineError, NonFiniteTrainingError, CheckpointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not writer:
        return 0
    if not job.best_ckpt.is_file():
        print(f"error: backend '{params.backend}' finished without writing {job.best_ckpt}", file=sys.stderr)
        return 1
    print(f"train: best {job.best_ckpt} " + ", ".join(f"{k}={v}" for k, v in summary.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
