"""A tiny paired corpus: noisy = clean + noise at two sampling rates, plus a speech-free row (a uniquely named
module: test folders are not packages; the `corpus` fixture of conftest.py and module-scoped fixtures use it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

SPLITS = {"train": 8, "dev": 4, "test": 4}
RATES = (8000, 16000)
SECONDS = 1.0


def _speechlike(rng: np.random.Generator, sr: int, n: int) -> np.ndarray:
    """A harmonic tone with syllable-rate amplitude modulation (enough structure for PESQ/ESTOI)."""
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 220)
    harmonics = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(2, 4) * t), 0, None) ** 2
    return (0.3 * harmonics * envelope).astype(np.float32)


def build_corpus(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write wavs, three manifests and a curated CSV under ``root``; return their paths."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for split, count in SPLITS.items():
        rows = []
        for i in range(count):
            sr = RATES[i % len(RATES)]
            n = int(SECONDS * sr)
            speech_free = split == "train" and i == count - 1
            clean = np.zeros(n, np.float32) if speech_free else _speechlike(rng, sr, n)
            noisy = clean + rng.normal(0, 0.05, n).astype(np.float32)
            uid = f"{split}_{i:02d}"
            sf.write(root / f"{uid}_noisy.wav", noisy, sr)
            clean_path = None
            if not speech_free:
                sf.write(root / f"{uid}_clean.wav", clean, sr)
                clean_path = str(root / f"{uid}_clean.wav")
            rows.append({"utt_id": uid, "path": str(root / f"{uid}_noisy.wav"), "clean_path": clean_path,
                         "duration_sec": SECONDS, "sr": sr, "language": "en" if i % 2 else "de",
                         "distortion": "noise" if i < 2 else "reverb", "split": split})
        paths[split] = root / "manifests" / "mini" / f"{split}.jsonl"  # where data.root=<root> puts them
        paths[split].parent.mkdir(parents=True, exist_ok=True)
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths["curated"] = root / "curated.csv"
    paths["curated"].write_text("utt_id\n" + "".join(f"train_{i:02d}\n" for i in range(SPLITS["train"])))
    return paths


def tiny_params(root: Path, paths: dict[str, Path]) -> Path:
    """The tests' params with data.root at the corpus (its manifests) and the tiny training profile."""
    cfg = yaml.safe_load((TEST_PARAMS).read_text())
    cfg["data"].update(dataset="mini", root=str(paths["train"].parents[2]))
    cfg["train"].update(max_steps=4, val_every_steps=2, log_every_steps=1)
    cfg["train"]["model"]["options"].update(num_channels=8, num_layers=1)
    cfg["train"]["data"].update(crop_seconds=0.5, batch_size=2)
    out = root / "params.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out
