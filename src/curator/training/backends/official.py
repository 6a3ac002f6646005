"""The ``official`` backend: the URGENT 2026 baseline's own trainer and inference, run from a checkout.

The checkout (never vendored; see third_party/README.md) is run as subprocesses with argument lists, on Kaldi-style
lists written from the curated rows in the baseline's pre-simulated format (``wav.scp``, ``spk1.scp``, ``utt2fs``,
``speech_length.scp``). The baseline reads its hyper-parameters from its YAML config; this backend copies that
config to ``models/<exp>/official/<exp>.yaml`` and changes only what a curated run needs:

- the lists, the seed and the device; ``train_set_dynamic_mixing: false``; ``resume: false``;
- ``train.official.overrides`` (epochs, model size, ... for a short or small run);
- ``val_check_interval``, which is also its checkpoint interval, scaled to the curated set: at most the batches of
  one epoch (Lightning refuses a larger one) and at most half of the run's steps (the baseline's checkpoint callback
  saves every ``val_check_interval`` steps *before* that step's validation, so its first save has no ``val_loss``).

Speech-free rows (no clean file, or an all-zero one) are dropped for this backend and counted in the train metrics:
the official lists need a clean file per row, and the BSRNN baseline's loss normalises by the reference's variance
and turns silent references into NaN batches that it skips (FlowSE drops them too: both models, the same rows).

Every run starts from an empty ``models/<exp>/official/`` and runs there (the checkout on ``PYTHONPATH``), so the
baseline's ``exp/`` folder of logs and checkpoints is this run's alone: a stale run is never resumed and the
checkout is never written to.

The baseline's Lightning checkpoints pickle its ``baseline_code.config.Config``, which ``torch.load``'s default
``weights_only=True`` refuses. Inference therefore runs the checkout's ``inference`` module through a launcher that
allows exactly the classes in :data:`SAFE_GLOBALS` (``torch.serialization.add_safe_globals``) and keeps
weights-only loading on, instead of turning it off.

The FlowSE config (``conf/models/BSRNN_flowse.yaml``, ``model_type: flowse``) runs the same way. Its network size
is the top-level ``bsrnn_hidden``/``num_layer`` (overrides naming keys that the config and the baseline's
``Config`` lack, or ``model_configs`` for FlowSE, are refused: the baseline would ignore them), it logs its
validation loss as ``val_loss`` (BSRNN: ``val_loss_epoch``), and its ``enhance`` (each validation, and inference)
calls ``Tensor.cuda()`` whatever the device: on ``device: cpu`` its training also runs through the launcher,
which on CPU (training, and all inference) makes ``Tensor.cuda()`` return the tensor unchanged. Its checkpoints
also hold the EMA weights (tensors and numbers: no other global), which its inference uses.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

from curator.audio import AudioError, audio_info, fit_length, load_audio, row_decoding, save_audio
from curator.contract.manifest import resolve_path
from curator.io import atomic_open, atomic_path, executable, write_json
from curator.training.backends import BACKENDS, TrainJob, screen_job
from curator.training.params import OfficialParams

REPO_URL = "https://github.com/urgent-challenge/urgent2026_challenge_track1"
TRAIN_MODULE = "baseline_code.train_se"
INFER_MODULE = "baseline_code.inference"
REQUIRED_FILES = ("baseline_code/train_se.py", "baseline_code/inference.py")
CKPT_NAME = re.compile(r"step=(\d+)-val_loss=([0-9]+(?:\.[0-9]+)?|nan|inf)\.ckpt$")
UNSAFE_ID = re.compile(r"\s")
FORCED_KEYS = ("train_set_path", "valid_set_path", "train_set_dynamic_mixing", "seed", "device", "resume")
"""Keys of the official config that this backend sets itself; ``train.official.overrides`` may not name them."""
OFFICIAL_DEFAULTS = {"batch_size": 2, "num_train_epochs": 150, "num_gpu": 1, "val_check_interval": 50000,
                     "num_worker": 4}
"""``baseline_code/config.py``'s defaults for the keys read here, used when the YAML config leaves one out."""
CONFIG_KEYS = frozenset((
    "learning_rate", "batch_size", "weight_decay", "adam_epsilon", "num_worker", "num_train_epochs", "device",
    "num_gpu", "train_version", "train_tag", "train_name", "val_check_interval", "save_top_k", "resume", "seed",
    "gradient_clip", "lr_step_size", "lr_gamma", "train_set_path", "train_set_dynamic_mixing", "valid_set_path",
    "init_from", "max_duration", "use_high_pass", "se_model", "config_file", "model_configs"))
"""The attributes of ``baseline_code.config.Config`` (its defaults): with the YAML config's own keys, the keys an
override may name. The baseline sets any other key as an attribute that nothing reads, so a typo, or a key of the
other model (``model_configs`` for FlowSE, ``bsrnn_hidden`` for BSRNN), would change nothing, silently."""
OFFICIAL_NO_INIT = "none"
"""The official config's ``init_from`` when training starts from a fresh initialisation."""
FLOWSE = "flowse"
"""``model_type`` of the FlowSE config (``conf/models/BSRNN_flowse.yaml``): ``train_se`` builds ``FlowSEModel``, whose
network size is the top-level ``bsrnn_hidden`` and ``num_layer``, not ``model_configs``."""
SAFE_GLOBALS = ("baseline_code.config.Config",)
"""What an official checkpoint pickles beyond tensors and containers (its hyper-parameters object): allowed by
name for ``weights_only=True`` loading (``torch.serialization.get_unsafe_globals_in_checkpoint`` lists no other)."""

# Runs a module of the checkout as ``__main__`` after allowing SAFE_GLOBALS for torch's weights-only unpickler;
# on a CPU run, ``Tensor.cuda()`` returns the tensor unchanged (FlowSEModel.enhance calls ``Y.cuda()`` whatever the
# device: in each validation and in inference): argv = [safe globals (comma-separated), device, module, arguments ...]
SAFE_LAUNCH = """\
import importlib, runpy, sys
import torch
names, device, module = [n for n in sys.argv[1].split(",") if n], sys.argv[2], sys.argv[3]
torch.serialization.add_safe_globals(
    [getattr(importlib.import_module(n.rpartition(".")[0]), n.rpartition(".")[2]) for n in names])
if device == "cpu":
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
sys.argv = [module, *sys.argv[4:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""

# Reads the scalars of the official run's TensorBoard logs (tensorboard is a requirement of its trainer) as JSON.
READ_SCALARS = """\
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
json.dump({t: [[e.step, e.value] for e in acc.Scalars(t)] for t in sorted(acc.Tags()["scalars"])}, sys.stdout)
"""


class OfficialBaselineError(RuntimeError):
    """The official checkout is missing, incomplete, or one of its scripts failed."""


def require_checkout(p: OfficialParams) -> Path:
    """The checkout folder, or an error naming what is missing and where to put it."""
    checkout = Path(p.checkout)
    missing = [str(checkout / f) for f in REQUIRED_FILES if not (checkout / f).is_file()]
    if missing:
        raise OfficialBaselineError(
            f"the official URGENT baseline is not where train.official.checkout says: missing {', '.join(missing)}. "
            f"Clone {REPO_URL} into {checkout} and install its requirements into the interpreter named by "
            f"train.official.python ('{p.python}'); see third_party/README.md"
        )
    return checkout.resolve()


def official_python(p: OfficialParams) -> str:
    """``train.official.python`` as an absolute path (the official scripts run in another folder), or an error."""
    try:
        return executable(p.python, "train.official.python")
    except FileNotFoundError as exc:
        raise OfficialBaselineError(f"{exc}; install the checkout's requirements into an interpreter and name it "
                                    "there (see third_party/README.md)") from exc


def official_env(checkout: Path) -> dict[str, str]:
    """This process's environment with the checkout first on ``PYTHONPATH`` (its code runs from any folder)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(checkout), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    return env


def _run(cmd: Sequence[str], cwd: Path, what: str, env: Mapping[str, str] | None = None,
         capture: bool = False) -> str:
    try:
        proc = subprocess.run(list(cmd), cwd=cwd, env=None if env is None else dict(env), check=False,
                              stdout=subprocess.PIPE if capture else None, text=True)
    except OSError as exc:
        raise OfficialBaselineError(f"official {what} could not start '{cmd[0]}' in {cwd}: {exc}") from exc
    if proc.returncode != 0:
        shown = " ".join(c if "\n" not in c else "<launcher>" for c in cmd)
        raise OfficialBaselineError(f"official {what} failed (exit {proc.returncode}): {shown} in {cwd}")
    return proc.stdout or ""


def safe_module_cmd(python: str, module: str, args: Sequence[str], device: str) -> list[str]:
    """``python -m module args`` with weights-only checkpoint loading that allows exactly :data:`SAFE_GLOBALS`,
    and, when ``device`` is ``cpu``, ``Tensor.cuda()`` keeping tensors on the CPU (see :data:`SAFE_LAUNCH`)."""
    return [python, "-c", SAFE_LAUNCH, ",".join(SAFE_GLOBALS), device, module, *args]


def check_list_ids(ids: Sequence[str], where: str) -> None:
    """Kaldi-style lists are ``<id> <value>`` split on whitespace: an id holding any is an error naming it."""
    bad = [u for u in ids if not u or UNSAFE_ID.search(u)]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise OfficialBaselineError(
            f"{len(bad)} utt_id(s) cannot be written to the Kaldi lists of {where}: "
            f"{', '.join(repr(u) for u in bad[:5])}{more} hold whitespace (or are empty). Rebuild the manifest "
            "with ids without whitespace (the folder dataset makes them so)")


def _as_read(path: str, row: dict[str, Any], out: Path) -> str:
    """``path`` itself, or, when its manifest row says it is decoded differently (resampled to the row's rate,
    or one channel picked / channels averaged), a converted copy at ``out`` that the baseline reads as is."""
    target, channels = row_decoding(row)
    custom = row.get("custom") if isinstance(row.get("custom"), dict) else {}
    if target is None and int(custom.get("channels", 1)) == 1:  # type: ignore[union-attr]
        return path
    x, sr = load_audio(path, sr=target, channels=channels)
    save_audio(out, x, sr, subtype="FLOAT")
    return str(out.resolve())


def _all_zero(path: str, block: int = 1 << 16) -> bool:
    """Whether every sample of ``path`` is exactly zero (stops at the first block holding a non-zero one)."""
    try:
        with sf.SoundFile(path) as f:
            for chunk in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                if np.any(chunk):
                    return False
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot read '{path}': {exc}") from exc
    return True


def split_speech_free(rows: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """The rows with a non-silent clean reference (order kept), and one ``{utt_id, path, reason}`` per row without
    one: no clean file (``speech_free``) or a clean file of all-zero samples (``silent_reference``)."""
    dropped, keep = [], np.ones(len(rows), dtype=bool)
    for i, (uid, noisy, clean) in enumerate(zip(rows["utt_id"], rows["path"], rows["clean_path"], strict=True)):
        if clean is None or pd.isna(clean):
            why = "speech_free: no clean reference (the official lists need a clean file per row: spk1.scp)"
        elif _all_zero(str(resolve_path(str(clean)))):
            why = (f"silent_reference: every sample of {clean} is zero (the official BSRNN loss divides by its "
                   "variance; dropped for FlowSE too, so both official models train on the same rows)")
        else:
            continue
        keep[i] = False
        dropped.append({"utt_id": str(uid), "path": str(noisy), "reason": why})
    return rows[keep].reset_index(drop=True), dropped


def write_lists(rows: pd.DataFrame, out_dir: Path) -> Path:
    """Write the baseline's pre-simulated list files for ``rows`` (all with a clean reference); returns ``out_dir``."""
    check_list_ids([str(u) for u in rows["utt_id"]], str(out_dir))
    records = rows.to_dict("records")
    missing = [str(r["utt_id"]) for r in records if r["clean_path"] is None or pd.isna(r["clean_path"])]
    if missing:
        raise OfficialBaselineError(f"rows without a clean reference cannot go to the official lists in {out_dir}: "
                                    f"{', '.join(missing[:5])} (drop them with split_speech_free)")
    noisy = [_as_read(str(resolve_path(r["path"]).resolve()), r, out_dir / "converted" / f"{r['utt_id']}.wav")
             for r in records]
    clean = [_as_read(str(resolve_path(str(r["clean_path"])).resolve()), r,
                      out_dir / "converted" / f"{r['utt_id']}_clean.wav") for r in records]
    files = {"wav.scp": noisy, "spk1.scp": clean, "utt2fs": rows["sr"].astype(int).tolist(),
             "speech_length.scp": [audio_info(p)[1] for p in noisy]}
    for name, values in files.items():
        with atomic_open(out_dir / name) as f:
            f.writelines(f"{u} {v}\n" for u, v in zip(rows["utt_id"], values, strict=True))
    return out_dir


def official_batches(rates: Sequence[int], batch_size: int, world_size: int = 1) -> int:
    """Batches per epoch of the baseline's ``GroupedBatchSampler`` (one rate per batch, incomplete batches
    dropped, each rate's rows dealt round-robin to ``world_size`` ranks), on the rank that gets the fewest."""
    counts = Counter(int(r) for r in rates).values()
    return min(sum(len(range(rank, n, world_size)) // batch_size for n in counts) for rank in range(world_size))


def scaled_interval(configured: int, batches_per_epoch: int, epochs: int) -> int:
    """``val_check_interval`` (also the checkpoint interval) for a run of ``epochs`` x ``batches_per_epoch`` steps:
    the configured one, at most one epoch, at most half of the run (so that a checkpoint follows a validation)."""
    steps = epochs * batches_per_epoch
    if steps < 2:
        raise OfficialBaselineError(
            f"the official run would take {steps} step(s) ({epochs} epoch(s) of {batches_per_epoch} batch(es)); its "
            "first checkpoint needs two. Curate more rows, lower batch_size or raise num_train_epochs "
            "(train.official.overrides)")
    return max(1, min(int(configured), batches_per_epoch, steps // 2))


def start_weights(cfg: Mapping[str, Any]) -> str | None:
    """The checkpoint an official config (or ``train.official.overrides``) starts training from: its ``init_from``,
    or None for a fresh initialisation (the key absent, null, or the baseline's ``'none'``)."""
    init = cfg.get("init_from")
    return None if init is None or str(init) == OFFICIAL_NO_INIT else str(init)


def official_config(base: Mapping[str, Any], overrides: Mapping[str, Any], train_dir: Path, dev_dir: Path,
                    train_rates: Sequence[int], dev_rates: Sequence[int], seed: int, device: str
                    ) -> tuple[dict[str, Any], dict[str, int]]:
    """The copied official config for this run, and the batch counts and interval it was scaled with."""
    forced = sorted(set(overrides) & set(FORCED_KEYS))
    if forced:
        raise OfficialBaselineError(f"train.official.overrides may not set {', '.join(forced)}: the official backend "
                                    "sets them itself (the curated lists, seed, device, no dynamic mixing, no resume)")
    unknown = sorted(set(overrides) - set(base) - CONFIG_KEYS)
    if unknown:
        raise OfficialBaselineError(
            f"train.official.overrides names {', '.join(unknown)}, which neither train.official.config nor the "
            f"baseline's Config has: the baseline would ignore {'it' if len(unknown) == 1 else 'them'}. Use the "
            f"config's own keys (it has {', '.join(sorted(base))})")
    if base.get("model_type") == FLOWSE and "model_configs" in overrides:
        raise OfficialBaselineError(
            "train.official.overrides sets model_configs, which the FlowSE config (model_type: flowse) does not "
            "read: its network size is the top-level bsrnn_hidden (even) and num_layer, e.g. "
            "{bsrnn_hidden: 8, num_layer: 1}")
    cfg = {**OFFICIAL_DEFAULTS, **base, **overrides}
    start = start_weights(cfg)
    cfg["init_from"] = OFFICIAL_NO_INIT if start is None else str(Path(start).resolve())  # it runs in the run folder
    if start is not None and not Path(start).is_file():
        raise OfficialBaselineError(f"init_from = {start!r} (train.official.overrides) does not exist (read from "
                                    f"{Path.cwd()}): give an official baseline checkpoint")
    if int(cfg["num_worker"]) < 1:
        raise OfficialBaselineError(f"num_worker={cfg['num_worker']}: the official data loaders use persistent "
                                    "workers, which need num_worker >= 1 (train.official.overrides)")
    batch_size, world = int(cfg["batch_size"]), int(cfg["num_gpu"])  # its Trainer(devices=num_gpu), on CPU too
    train_batches = official_batches(train_rates, batch_size, world)
    val_batches = official_batches(dev_rates, batch_size, 1)
    for what, n, rates in (("training", train_batches, train_rates), ("validation", val_batches, dev_rates)):
        if n == 0:
            raise OfficialBaselineError(
                f"no {what} batch: the official sampler only forms batches of batch_size={batch_size} rows of one "
                f"sampling rate (incomplete ones dropped), and the {what} rows per rate are "
                f"{dict(sorted(Counter(int(r) for r in rates).items()))}. Lower batch_size in "
                "train.official.overrides or curate more rows")
    configured = int(cfg["val_check_interval"])
    interval = scaled_interval(configured, train_batches, int(cfg["num_train_epochs"]))
    cfg.update(train_set_path=str(train_dir), valid_set_path=str(dev_dir), train_set_dynamic_mixing=False,
               seed=seed, device=device, resume=False, val_check_interval=interval)
    info = {"model_type": str(cfg.get("model_type")),
            "train_batches_per_epoch": train_batches, "val_batches": val_batches, "val_check_interval": interval,
            "configured_val_check_interval": configured,
            "num_train_epochs": int(cfg["num_train_epochs"]), "batch_size": batch_size}
    return cfg, info


def official_checkpoints(exp_root: Path) -> list[tuple[float, int, Path]]:
    """``(val_loss, step, path)`` of every ``...step=N-val_loss=X.ckpt`` under ``exp_root``, best first."""
    found = [(float(m.group(2)), int(m.group(1)), p) for p in exp_root.rglob("*.ckpt")
             if (m := CKPT_NAME.search(p.name))]
    return sorted(found, key=lambda t: (np.nan_to_num(t[0], nan=np.inf), t[1], str(t[2])))


def best_official_checkpoint(exp_root: Path) -> tuple[Path, float]:
    """The checkpoint under ``exp_root`` with the lowest finite ``val_loss=`` in its file name."""
    found = [c for c in official_checkpoints(exp_root) if np.isfinite(c[0])]
    if not found:
        raise OfficialBaselineError(f"the official trainer left no '*step=*-val_loss=*.ckpt' with a finite loss "
                                    f"under {exp_root}")
    loss, _, path = found[0]
    return path, loss


def write_curves(scalars: Mapping[str, Sequence[Sequence[float]]], live_dir: Path) -> list[str]:
    """The official run's logged scalars as ``<live_dir>/plots/metrics/<tag>.tsv`` (``step``, value), like DVCLive's
    curves; returns the tags written. Replaces the folder so that no other run's curve is left beside them."""
    plots = live_dir / "plots" / "metrics"
    shutil.rmtree(live_dir / "plots", ignore_errors=True)
    plots.mkdir(parents=True, exist_ok=True)
    for tag, points in scalars.items():
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", tag)
        with atomic_open(plots / f"{name}.tsv") as f:
            f.write(f"step\t{name}\n")
            f.writelines(f"{int(s)}\t{float(v)!r}\n" for s, v in points)
    return sorted(scalars)


@BACKENDS.register("official")
def train_official(job: TrainJob) -> dict[str, Any]:
    """Train with the checkout's ``train_se`` on the curated rows; copy its best checkpoint to best.ckpt."""
    from curator.training.data import skip_report

    p = job.params.official
    checkout = require_checkout(p)
    python = official_python(p)
    base_config = checkout / p.config
    if not base_config.is_file():
        raise OfficialBaselineError(f"train.official.config: '{base_config}' does not exist in the checkout")
    skipped = screen_job(job)  # the official trainer would die on the first bad file; skip and name them here
    speech_free = {}
    for name in ("train", "val"):
        kept, dropped = split_speech_free(getattr(job, f"{name}_rows"))
        if kept.empty:
            raise OfficialBaselineError(f"every {name} row is speech-free ({len(dropped)}); the official loss needs a "
                                        "clean reference with speech")
        setattr(job, f"{name}_rows", kept)
        speech_free[f"speech_free_{name}"] = skip_report(dropped)
        if dropped:
            print(f"train: official backend drops {len(dropped)} speech-free {name} row(s) "
                  f"(e.g. {dropped[0]['utt_id']}): its loss is undefined on an all-zero reference")
    work = (job.exp_dir / "official").resolve()
    shutil.rmtree(work, ignore_errors=True)  # a fresh run folder: nothing of an earlier run is resumed or reused
    base = yaml.safe_load(base_config.read_text(encoding="utf-8")) or {}
    cfg, info = official_config(base, p.overrides, write_lists(job.train_rows, work / "train"),
                                write_lists(job.val_rows, work / "dev"), job.train_rows["sr"].tolist(),
                                job.val_rows["sr"].tolist(), job.params.seed, p.device)
    config = work / f"{job.exp_dir.name}.yaml"  # the baseline names its run (exp/<name>/) after the config file
    with atomic_open(config) as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    env = official_env(checkout)
    args = ["--config_file", str(config)]
    if cfg.get("model_type") == FLOWSE and p.device == "cpu":  # FlowSE's validation calls Tensor.cuda()
        _run(safe_module_cmd(python, TRAIN_MODULE, args, p.device), work, "training", env)
    else:
        _run([python, "-m", TRAIN_MODULE, *args], work, "training", env)
    exp_root = work / "exp" / config.stem
    src, loss = best_official_checkpoint(exp_root)
    with atomic_path(job.best_ckpt) as tmp:
        shutil.copyfile(src, tmp)
    scalars: dict[str, list[list[float]]] = {}
    for logs in sorted({e.parent for e in exp_root.rglob("events.out.tfevents.*")}):  # one folder: a fresh run
        scalars.update(json.loads(_run([python, "-c", READ_SCALARS, str(logs)], work, "log reading", env,
                                       capture=True)))
    # BSRNN logs val_loss per step and epoch ("val_loss_epoch"), FlowSE per epoch only ("val_loss")
    val_tag = "val_loss_epoch" if "val_loss_epoch" in scalars else "val_loss"
    val = [float(v) if math.isfinite(v) else None for _, v in scalars.get(val_tag, [])]
    summary = {"best_val_loss": loss, "best_step": int(CKPT_NAME.search(src.name).group(1)),  # type: ignore[union-attr]
               "steps": info["num_train_epochs"] * info["train_batches_per_epoch"],  # Lightning's max_epochs run
               "val_loss_tag": val_tag, "n_validations": len(val), "first_val_loss": val[0] if val else None,
               "last_val_loss": val[-1] if val else None, "n_checkpoints": len(official_checkpoints(exp_root)),
               "official_checkpoint": str(src.relative_to(work)), "n_train_utts": len(job.train_rows),
               "n_val_utts": len(job.val_rows), **info}
    curves = write_curves(scalars, job.live_dir)
    write_json(job.live_dir / "metrics.json", {**summary, **skipped, **speech_free, "curves": curves})
    return {**summary, "skipped_train": skipped["skipped_train"]["n"], "skipped_val": skipped["skipped_val"]["n"],
            "speech_free_train": speech_free["speech_free_train"]["n"],
            "speech_free_val": speech_free["speech_free_val"]["n"]}


class OfficialEnhancer:
    """Enhancer for an official checkpoint: runs the checkout's ``inference`` once per prepared chunk."""

    def __init__(self, ckpt: Path, p: OfficialParams) -> None:
        try:
            self.checkout = require_checkout(p)
            self.python = official_python(p)
        except OfficialBaselineError as exc:
            raise OfficialBaselineError(f"'{ckpt}' is not this project's checkpoint, so it runs through the official "
                                        f"inference: {exc}. Without the checkout, an official BSRNN or FlowSE "
                                        f"checkpoint runs natively once imported: `curator import-official {ckpt} "
                                        "--out models/<exp>/best.ckpt`") from exc
        self.ckpt = Path(ckpt).resolve()
        self.params = p
        self.outputs: dict[str, np.ndarray] = {}
        self.failed: dict[str, str] = {}

    def prepare(self, rows: pd.DataFrame) -> None:
        """Enhance ``rows`` with the official inference script and keep the results in memory."""
        with tempfile.TemporaryDirectory(prefix="official_infer_") as tmp:
            work = Path(tmp)
            scp = work / "wav.scp"
            check_list_ids([str(u) for u in rows["utt_id"]], str(scp))
            inputs = [_as_read(str(resolve_path(r["path"]).resolve()), r, work / "converted" / f"{r['utt_id']}.wav")
                      for r in rows.to_dict("records")]
            scp.write_text("".join(f"{u} {p}\n" for u, p in zip(rows["utt_id"], inputs, strict=True)))
            out = work / "out"
            _run(safe_module_cmd(self.python, INFER_MODULE,
                                 ["--input_scp", str(scp), "--output_dir", str(out), "--ckpt_path", str(self.ckpt),
                                  "--device", self.params.device], self.params.device),
                 work, "inference", official_env(self.checkout))
            self.outputs, self.failed = {}, {}
            for u in map(str, rows["utt_id"]):
                try:
                    self.outputs[u] = load_audio(out / "wav" / f"{u}.wav")[0]
                except AudioError as exc:  # one missing or broken output: that utterance is skipped, not the split
                    self.failed[u] = str(exc)

    def __call__(self, utt_id: str, noisy: np.ndarray, sr: int) -> np.ndarray:
        if utt_id not in self.outputs:
            raise AudioError(f"official inference produced no usable output for '{utt_id}'"
                             + (f" ({self.failed[utt_id]})" if utt_id in self.failed else ""))
        return fit_length(self.outputs[utt_id], len(noisy))
