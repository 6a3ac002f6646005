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


def test_pooled_figure_beside_the_paired_means_and_in_the_official_rank() -> None:
    """A metric whose official figure is a weighted mean (CAcc: 1 - the set's pooled CER) gets it as ``pooled``,
    over the paired rows of positive weight, and the official rank ranks by it: here the means tie (0.5 each) and
    the pooled figures do not (the long transcript was recognised better)."""
    from curator.evaluation.metrics import MetricOptions
    from curator.evaluation.metrics.task_dependent import _cacc_pool_weights
    from curator.evaluation.report import summarise_split

    cacc = METRICS.get("cacc")
    labels = [{"text": "Hello, World!"}, {"text": "a" * 30}, {"text": "<not-available>"}, {}]
    weights = cacc.pool_weights(labels, MetricOptions())
    np.testing.assert_array_equal(weights, [11, 30, 0, 0])  # "hello world": Whisper's basic normaliser
    assert _cacc_pool_weights(labels, MetricOptions(cacc_reference="reference_audio")) is None
    df = pd.DataFrame({"utt_id": list("abcd"), "has_reference": True, "distortion": "noise",
                       "output_to_input_db": 0.0, "cacc": [0.0, 1.0, 0.5, np.nan],
                       "noisy_cacc": [0.5, 0.5, 0.5, 0.2], "cacc_pool_weight": [10.0, 30.0, 0.0, 5.0]})
    out = summarise_split(df, [cacc], 0.25, {"n_boot": 200, "seed": 0, "confidence": 0.95})
    block = out["metrics"]["cacc"]
    assert (block["n"], block["enhanced"], block["noisy"]) == (3, 0.5, 0.5)
    assert block["pooled"] == {"enhanced": 0.75, "noisy": 0.5, "n": 2}  # (10 * 0 + 30 * 1) / 40
    official = out["urgent_rank"]["official"]
    assert official["enhanced"] < official["noisy"], official  # a lower overall rank is better
    without = summarise_split(df.drop(columns="cacc_pool_weight"), [cacc], 0.25,
                              {"n_boot": 200, "seed": 0, "confidence": 0.95})
    assert "pooled" not in without["metrics"]["cacc"]
    assert without["urgent_rank"]["official"]["enhanced"] == without["urgent_rank"]["official"]["noisy"]
