"""Synthetic noisy/clean pairs and manifests for the scoring tests (no dataset needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curator.audio import save_audio
from curator.contract.manifest import write_manifest

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
"""The tests' own params (see tests/params.yaml), never the working copy's."""

RATES = (8000, 16000, 24000, 48000)
NO_PROBE = ("score.loss_proxy.weights={in_sisdr: 0.4, in_estoi: 0.3, in_pesq: 0.3}",
            "score.loss_proxy.probe_path=null")
"""loss_proxy without the probe stage's column (the committed params mix in data/scores/probe_loss.parquet)."""

LIGHT = ("score.scorers=[bandwidth, vad, clipping, sisdr, snr, estoi, pesq, embedding]",
         "score.ref_quality.weights={ref_bandwidth_ratio: 1.0}", *NO_PROBE)
"""Every scorer but DNSMOS (the slowest), with ref_quality from the bandwidth ratio alone."""


def speechlike(rng: np.random.Generator, sr: int, seconds: float) -> np.ndarray:
    """Harmonic, syllable-rate amplitude-modulated tone with a gliding f0: speech-like enough for the proxies."""
    t = np.arange(int(seconds * sr)) / sr
    f0 = rng.uniform(100, 220) * (1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / sr
    harmonics = sum(np.sin(k * phase) / k for k in range(1, 12) if k * f0.max() < sr / 2)
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    return (0.3 * harmonics * envelope / np.max(np.abs(harmonics))).astype(np.float32)


def make_pairs(root: Path, n: int, seed: int = 0, seconds: tuple[float, float] = (1.0, 2.0),
               snr_db: tuple[float, float] = (-5.0, 20.0)) -> list[dict]:
    """Write ``n`` noisy/clean pairs under ``root`` (relative paths) and return their manifest rows."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        sr = int(RATES[i % len(RATES)])
        clean = speechlike(rng, sr, rng.uniform(*seconds))
        noise = rng.standard_normal(clean.size).astype(np.float32)
        snr = rng.uniform(*snr_db)
        noise *= np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr / 10))
        noisy = np.clip(clean + noise, -1, 1)
        uid = f"utt{i:04d}"
        save_audio(root / f"{uid}_noisy.wav", noisy, sr)
        save_audio(root / f"{uid}_clean.wav", clean, sr)
        rows.append({"utt_id": uid, "path": str(root / f"{uid}_noisy.wav"),
                     "clean_path": str(root / f"{uid}_clean.wav"), "duration_sec": clean.size / sr, "sr": sr,
                     "language": ["en", "de"][i % 2], "distortion": ["noise", "reverb"][i % 2], "split": "train",
                     "speaker": f"spk{i % 3}", "snr_db": float(snr)})
    return rows


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """12 pairs over four sampling rates and a manifest of them."""
    root = tmp_path_factory.mktemp("corpus")
    rows = make_pairs(root, 12)
    write_manifest(root / "train.jsonl", rows)
    return root / "train.jsonl", rows


def make_bad_pairs(root: Path, sr: int = 16000) -> tuple[list[dict], dict[str, str]]:
    """One row per bad-input case; returns the rows and utt_id -> expected status."""
    import soundfile as sf

    rng = np.random.default_rng(1)
    good = speechlike(rng, sr, 1.0)
    noise = 0.05 * rng.standard_normal(good.size).astype(np.float32)
    cases: dict[str, tuple[np.ndarray | None, np.ndarray | None, str]] = {
        "bad_unreadable": (None, good, "unreadable"),
        "bad_nan": (np.full(good.size, np.nan, dtype=np.float32), good, "nan"),
        "bad_silent": (np.zeros_like(good), good, "silent"),
        "bad_too_short": (good[: sr // 5] + noise[: sr // 5], good[: sr // 5], "too_short"),
        "bad_length": (good + noise, good[: sr // 2], "length_mismatch"),
        "bad_speech_free": (noise, np.zeros_like(good), "ok"),
    }
    rows, expected = [], {}
    for uid, (noisy, clean, status) in cases.items():
        noisy_path, clean_path = root / f"{uid}_noisy.wav", root / f"{uid}_clean.wav"
        if noisy is None:
            noisy_path.write_bytes(b"this is not audio")
        else:
            sf.write(str(noisy_path), noisy, sr, subtype="FLOAT")
        sf.write(str(clean_path), clean, sr, subtype="FLOAT")
        rows.append({"utt_id": uid, "path": str(noisy_path), "clean_path": str(clean_path), "duration_sec": 1.0,
                     "sr": sr, "language": "en", "distortion": "noise", "split": "train"})
        expected[uid] = status
    sf.write(str(root / "bad_sr_noisy.wav"), good + noise, sr, subtype="FLOAT")
    sf.write(str(root / "bad_sr_clean.wav"), good, sr, subtype="FLOAT")
    rows.append({"utt_id": "bad_sr", "path": str(root / "bad_sr_noisy.wav"), "clean_path": str(root / "bad_sr_clean.wav"),
                 "duration_sec": 1.0, "sr": 48000, "language": "en", "distortion": "noise", "split": "train"})
    expected["bad_sr"] = "sr_mismatch"
    rows.append({"utt_id": "bad_noref", "path": str(root / "bad_sr_noisy.wav"), "clean_path": None,
                 "duration_sec": 1.0, "sr": sr, "language": "en", "distortion": "noise", "split": "train"})
    expected["bad_noref"] = "no_reference"
    return rows, expected


@pytest.fixture(scope="session")
def mixed_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Good pairs plus one of every bad input; returns the manifest and utt_id -> expected status."""
    root = tmp_path_factory.mktemp("mixed")
    good = make_pairs(root, 8, seed=3)
    bad, expected = make_bad_pairs(root)
    write_manifest(root / "train.jsonl", good + bad)
    return root / "train.jsonl", {**{r["utt_id"]: "ok" for r in good}, **expected}


def score_params(**overrides: object):
    """The committed params.yaml's score section with ``overrides`` (dotted keys below score.)."""
    from curator.config import load_params, load_section

    cfg = load_params(TEST_PARAMS, [*NO_PROBE, *(f"score.{k}={v}" for k, v in overrides.items())])
    return load_section("score", cfg=cfg)
