"""score_split with a stand-in enhancer: same length, peak normalisation, silent references, unreadable files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from curator.evaluation.enhance import peak_normalize
from curator.evaluation.evaluate import score_split
from curator.evaluation.metrics import METRICS

SR = 16000


class HalfEnhancer:
    """Returns the input at -6 dB, so suppression is measurable and SI-SDR equals the input's."""

    def prepare(self, rows: pd.DataFrame) -> None:
        self.prepared = list(rows["utt_id"])

    def __call__(self, utt_id: str, noisy: np.ndarray, sr: int) -> np.ndarray:
        return 0.5 * noisy


def test_score_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i, kind in enumerate(["speech", "silent_ref", "broken"]):
        clean = np.zeros(SR, np.float32) if kind == "silent_ref" else rng.normal(0, 0.1, SR).astype(np.float32)
        noisy = clean + rng.normal(0, 0.05, SR).astype(np.float32)
        sf.write(tmp_path / f"{i}_n.wav", noisy, SR)
        sf.write(tmp_path / f"{i}_c.wav", clean, SR)
        if kind == "broken":
            (tmp_path / f"{i}_n.wav").write_bytes(b"not audio")
        rows.append({"utt_id": f"u{i}", "path": str(tmp_path / f"{i}_n.wav"), "clean_path": str(tmp_path / f"{i}_c.wav"),
                     "sr": SR, "language": "en", "distortion": kind, "duration_sec": 1.0,
                     "augmentations": ["clipping(min=0.1,max=0.9)"] if i == 0 else [], "rir_id": "rir_0" if i else None})
    enhancer = HalfEnhancer()
    df, skipped = score_split(pd.DataFrame(rows), enhancer, [METRICS.get("si_sdr")], peak=0.9, silent_peak=1e-4,
                              chunk_utts=2, pool=None, desc="t")
    assert len(skipped) == 1 and skipped[0].startswith("u2: cannot decode") and "2_n.wav" in skipped[0]
    assert enhancer.prepared == ["u0", "u1"]  # the last chunk holds only u2, which is never handed to the enhancer
    assert df["utt_id"].tolist() == ["u0", "u1"]
    assert df["has_reference"].tolist() == [True, False]
    # the per-augmentation flags beside the primary label: raw strings by kind, a RIR is reverb
    assert df["augmentations"].tolist() == ["clipping+speech", "reverb+silent_ref"]
    assert list(df.columns[:5]) == ["utt_id", "sr", "language", "distortion", "augmentations"]
    assert df.loc[0, "si_sdr"] == pytest.approx(df.loc[0, "noisy_si_sdr"], abs=1e-4)
    assert np.isnan(df.loc[1, "si_sdr"])
    assert df["output_to_input_db"].to_numpy() == pytest.approx([-6.02, -6.02], abs=0.01)


def test_peak_normalize() -> None:
    x = np.array([0.1, -0.4, 0.2], np.float32)
    assert np.abs(peak_normalize(x, 0.9)).max() == pytest.approx(0.9)
    assert not peak_normalize(np.zeros(3, np.float32), 0.9).any()
