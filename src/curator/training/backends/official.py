"""The ``official`` backend: the URGENT 2026 baseline's own trainer and inference, run from a checkout.

The checkout (never vendored; see third_party/README.md) is run as subprocesses with argument lists, from its
root, on Kaldi-style lists written from the curated rows in the baseline's pre-simulated format (``wav.scp``,
``spk1.scp``, ``utt2fs``, ``speech_length.scp``). Speech-free rows get an all-zero reference file, the same
zero target the native trainer uses. The baseline reads its hyper-parameters from its YAML config; this
backend copies that config and only points it at the lists, the seed and the device.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from curator.audio import AudioError, audio_info, load_audio, row_decoding, save_audio
from curator.contract.manifest import resolve_path
from curator.io import atomic_open, atomic_path
from curator.training.backends import BACKENDS, TrainJob, screen_job
from curator.training.params import OfficialParams

REPO_URL = "https://github.com/urgent-challenge/urgent2026_challenge_track1"
TRAIN_MODULE = "baseline_code.train_se"
INFER_MODULE = "baseline_code.inference"
REQUIRED_FILES = ("baseline_code/train_se.py", "baseline_code/inference.py")
VAL_LOSS = re.compile(r"val_loss=([0-9]+(?:\.[0-9]+)?)")
UNSAFE_ID = re.compile(r"\s")


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
    return checkout


def _run(cmd: Sequence[str], cwd: Path, what: str) -> None:
    proc = subprocess.run(list(cmd), cwd=cwd, check=False)
    if proc.returncode != 0:
        raise OfficialBaselineError(f"official {what} failed (exit {proc.returncode}): {' '.join(cmd)} in {cwd}")


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


def write_lists(rows: pd.DataFrame, out_dir: Path) -> Path:
    """Write the baseline's pre-simulated list files for ``rows``; returns ``out_dir``."""
    check_list_ids([str(u) for u in rows["utt_id"]], str(out_dir))
    records = rows.to_dict("records")
    noisy = [_as_read(str(resolve_path(r["path"]).resolve()), r, out_dir / "converted" / f"{r['utt_id']}.wav")
             for r in records]
    lengths = [audio_info(p)[1] for p in noisy]
    clean = []
    for r, n in zip(records, lengths, strict=True):
        uid, path, sr = r["utt_id"], r["clean_path"], r["sr"]
        if path is None or pd.isna(path):
            silent = out_dir / "zero_targets" / f"{uid}.wav"
            save_audio(silent, np.zeros(n, np.float32), int(sr))
            clean.append(str(silent.resolve()))
        else:
            clean.append(_as_read(str(resolve_path(str(path)).resolve()), r,
                                  out_dir / "converted" / f"{uid}_clean.wav"))
    files = {"wav.scp": noisy, "spk1.scp": clean, "utt2fs": rows["sr"].astype(int).tolist(),
             "speech_length.scp": lengths}
    for name, values in files.items():
        with atomic_open(out_dir / name) as f:
            f.writelines(f"{u} {v}\n" for u, v in zip(rows["utt_id"], values, strict=True))
    return out_dir


def best_official_checkpoint(exp_root: Path) -> tuple[Path, float]:
    """The checkpoint under ``exp_root`` with the lowest ``val_loss=`` in its file name."""
    found = [(float(m.group(1)), p) for p in exp_root.rglob("*.ckpt") if (m := VAL_LOSS.search(p.name))]
    if not found:
        raise OfficialBaselineError(f"the official trainer left no '*val_loss=*.ckpt' under {exp_root}")
    loss, path = min(found, key=lambda t: (t[0], str(t[1])))
    return path, loss


@BACKENDS.register("official")
def train_official(job: TrainJob) -> dict[str, Any]:
    """Train with the checkout's ``train_se`` on the curated rows; copy its best checkpoint to best.ckpt."""
    p = job.params.official
    checkout = require_checkout(p)
    base_config = checkout / p.config
    if not base_config.is_file():
        raise OfficialBaselineError(f"train.official.config: '{base_config}' does not exist in the checkout")
    work = (job.exp_dir / "official").resolve()
    skipped = screen_job(job)  # the official trainer would die on the first bad file; skip and name them here
    cfg = yaml.safe_load(base_config.read_text(encoding="utf-8")) or {}
    cfg.update(train_set_path=str(write_lists(job.train_rows, work / "train")),
               valid_set_path=str(write_lists(job.val_rows, work / "dev")),
               train_set_dynamic_mixing=False, seed=job.params.seed, device=p.device)
    config = work / f"{job.exp_dir.name}.yaml"  # the baseline names its run after the config file
    with atomic_open(config) as f:
        yaml.safe_dump(cfg, f, sort_keys=False)
    _run([p.python, "-m", TRAIN_MODULE, "--config_file", str(config)], checkout, "training")
    src, loss = best_official_checkpoint(checkout / "exp" / config.stem)
    with atomic_path(job.best_ckpt) as tmp:
        shutil.copyfile(src, tmp)
    return {"best_val_loss": loss, "official_checkpoint": str(src), "n_train_utts": len(job.train_rows),
            "skipped_train": skipped["skipped_train"], "skipped_val": skipped["skipped_val"]}


class OfficialEnhancer:
    """Enhancer for an official checkpoint: runs the checkout's ``inference`` once per prepared chunk."""

    def __init__(self, ckpt: Path, p: OfficialParams) -> None:
        self.checkout = require_checkout(p)
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
            _run([self.params.python, "-m", INFER_MODULE, "--input_scp", str(scp), "--output_dir", str(out),
                  "--ckpt_path", str(self.ckpt), "--device", self.params.device], self.checkout, "inference")
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
        y = self.outputs[utt_id][:len(noisy)]
        return np.pad(y, (0, len(noisy) - len(y)))
