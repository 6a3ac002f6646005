"""Helpers shared by the datasets tests (a uniquely named module: test folders are not packages)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from curator.datasets.kaldi import META_COLUMNS

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

REPO = Path(__file__).resolve().parents[2]
PARAMS = TEST_PARAMS
TINY = ["dataset.mini.n_train=8", "dataset.mini.n_dev=4", "dataset.mini.n_test=4",
        "dataset.mini.speakers.train=2", "dataset.mini.speakers.dev=1", "dataset.mini.speakers.test=1",
        "dataset.mini.n_rirs.train=2", "dataset.mini.n_rirs.dev=1", "dataset.mini.n_rirs.test=1",
        "dataset.mini.noises_per_type=1", "dataset.mini.noise_duration_sec=2.0",
        "dataset.mini.duration_sec=[1.0,1.5]", "dataset.mini.speech_free_fraction=0.25",
        "dataset.mini.imperfect_fraction=0.5"]
"""A profile that builds in seconds: 8/4/4 utterances, one clip per noise type."""


def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonic 'voiced' bursts separated by pauses: non-stationary like speech, with silent gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    gate = (np.sin(2 * np.pi * 1.5 * t) > -0.3).astype(float)
    return (0.3 * voiced * gate + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def write_wav(path: Path, x: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype=subtype)
    return path


UTTS = [  # id, fs, seconds, lang, noise_uid, rir_uid, augmentation, expected label
    ("fileid_1", 16000, 1.0, "en", "dns_noise_1", "none", "none", "noise"),
    ("fileid_2", 48000, 0.8, "zh-CN", "dns_noise_2", "rir_7", "none", "reverb"),
    ("fileid_3", 8000, 1.2, "de", "wind_noise_3",
     "none", "wind_noise(threshold=0.2,ratio=3.0,attack=10.0,release=50.0,sc_gain=1.0,clipping=True,"
     "clipping_threshold=0.9)/codec(format=mp3,encoder=None,qscale=3)", "codec"),
    ("fileid_10", 22050, 0.5, "fr", "wind_noise_1", "rir_2", "wind_noise(threshold=0.1,ratio=2.0,attack=5.0,"
     "release=5.0,sc_gain=1.0,clipping=False,clipping_threshold=0.9)", "wind"),
    ("fileid_11", 44100, 0.6, "es", "fsd_9", "rir_3",
     "bandwidth_limitation-kaiser_best->16000/clipping(min=0.05,max=0.94)", "bandwidth_limitation"),
    ("fileid_12", 8000, 0.7, "en", "fsd_2", "none", "bandwidth_limitation-none->8000", "noise"),
]


def write_official_layout(root: Path) -> Path:
    """Audio under root/simulation_train, lists under root/data/train_simulation (paths relative to root)."""
    lists = root / "data" / "train_simulation"
    lists.mkdir(parents=True)
    tables: dict[str, list[str]] = {k: [] for k in ("wav.scp", "spk1.scp", "utt2fs", "utt2spk", "text", "utt2lang",
                                                    "speech_length.scp")}
    meta = ["\t".join(META_COLUMNS)]
    for i, (uid, fs, sec, lang, noise, rir, aug, _) in enumerate(UTTS):
        clean = speech_like(fs, sec, seed=i)
        noisy = clean + 0.01 * np.random.default_rng(i).standard_normal(len(clean)).astype(np.float32)
        rel_noisy, rel_clean = f"simulation_train/noisy/0/{uid}.flac", f"simulation_train/clean/0/{uid}.flac"
        write_wav(root / rel_noisy, noisy, fs)
        write_wav(root / rel_clean, clean, fs)
        text = f"sentence number {i} with spaces"
        tables["wav.scp"].append(f"{uid} {rel_noisy}")
        tables["spk1.scp"].append(f"{uid} {rel_clean}")
        tables["utt2fs"].append(f"{uid} {fs}")
        tables["utt2spk"].append(f"{uid} spk{i % 2}")
        tables["text"].append(f"{uid} {text}")
        tables["utt2lang"].append(f"{uid} {lang}")
        tables["speech_length.scp"].append(f"{uid} {len(clean)}")
        meta.append("\t".join([uid, rel_noisy, f"src_{i}", f"spk{i % 2}", rel_clean, noise, str(5.5 + i), rir, aug,
                               str(fs), str(len(clean)), text]))
    for name, lines in tables.items():
        (lists / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    (root / "simulation_train" / "log").mkdir(parents=True)
    (root / "simulation_train" / "log" / "meta.tsv").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return lists
