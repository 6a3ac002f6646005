"""Reference-quality scorers: DNSMOS equals the official computation, bandwidth/clipping/VAD measure what they say."""

from __future__ import annotations

import numpy as np
import pytest

from curator.audio import resample
from curator.scoring.base import AudioBatch, pad
from curator.scoring.scorers.bandwidth import effective_bandwidth
from curator.scoring.scorers.clipping import clip_ratio
from curator.scoring.scorers.dnsmos import DnsmosOptions, DnsmosScorer, windows
from curator.scoring.scorers.vad import VadScorer

from .conftest import speechlike


def batch_of(clean: list[np.ndarray], sr: int = 16000) -> AudioBatch:
    return AudioBatch([f"u{i}" for i in range(len(clean))], np.full(len(clean), sr), list(clean), list(clean),
                      np.zeros(len(clean), dtype=bool))


@pytest.fixture(scope="module")
def dnsmos_all_windows() -> DnsmosScorer:
    scorer = DnsmosScorer(DnsmosOptions(max_windows=None))
    scorer.setup()
    return scorer


def test_dnsmos_equals_speechmos_reference(dnsmos_all_windows: DnsmosScorer):
    seconds = 10.5  # two windows: exercises the windowing and the averaging
    speechmos = pytest.importorskip("speechmos.dnsmos")
    rng = np.random.default_rng(0)
    x = (speechlike(rng, 16000, seconds) + 0.01 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    ours = dnsmos_all_windows.score_batch(batch_of([x]))
    ref = speechmos.run(x, 16000)
    assert ours["ref_dnsmos_ovrl"][0] == pytest.approx(ref["ovrl_mos"], abs=1e-6)
    assert ours["ref_dnsmos_sig"][0] == pytest.approx(ref["sig_mos"], abs=1e-6)
    assert ours["ref_dnsmos_bak"][0] == pytest.approx(ref["bak_mos"], abs=1e-6)
    np.testing.assert_array_equal(ours["mos_dns"], ours["ref_dnsmos_ovrl"])


def test_dnsmos_background_score_drops_with_noise():
    scorer = DnsmosScorer()  # default: one window per utterance
    scorer.setup()
    rng = np.random.default_rng(1)
    x = speechlike(rng, 16000, 3.0)
    noisy = (x + 0.05 * rng.standard_normal(x.size)).astype(np.float32)
    out = scorer.score_batch(batch_of([x, noisy]))
    assert out["ref_dnsmos_bak"][0] > out["ref_dnsmos_bak"][1] + 0.5


def test_dnsmos_windows_cap_and_official_count():
    x = np.zeros(int(20.0 * 16000), dtype=np.float32)
    assert windows(x).shape == (7, 144160)  # the official float arithmetic drops some 1 s hops
    assert windows(x, max_windows=2).shape == (2, 144160)
    assert windows(np.zeros(32000, dtype=np.float32)).shape[0] == 7  # 2 s doubled to 16 s


def test_bandwidth_finds_the_resampling_cutoff():
    rng = np.random.default_rng(0)
    sr = 48000
    x = (0.1 * rng.standard_normal(2 * sr)).astype(np.float32)
    limited = [resample(resample(x, sr, r), r, sr) for r in (8000, 16000, 22050)]
    bw = effective_bandwidth(*pad([*limited, x]), sr, drop_db=50.0)
    np.testing.assert_allclose(bw, [4000, 8000, 11025, 24000], rtol=0.05)


def test_clip_ratio_counts_stuck_samples_only():
    rng = np.random.default_rng(0)
    x = speechlike(rng, 16000, 2.0) + 0.01 * rng.standard_normal(32000).astype(np.float32)
    lo, hi = np.quantile(x, [0.05, 0.95])
    clipped = np.clip(x, lo, hi)
    ratio = clip_ratio(*pad([x, clipped]), tolerance=1e-3)
    assert ratio[0] < 1e-3 and ratio[1] == pytest.approx(0.1, abs=0.01)


def test_vad_equals_silero_reference_and_is_zero_on_silence():
    silero = pytest.importorskip("silero_vad.sequence_vad")
    from pathlib import Path

    import silero_vad

    scorer = VadScorer()
    scorer.setup()
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(8000, np.float32), speechlike(rng, 16000, 2.0)])
    ref = silero.SileroVADSequence(str(Path(silero_vad.__file__).parent / "data" / "silero_vad_16k_sequence.onnx"))
    np.testing.assert_allclose(scorer.speech_probs(x), ref.audio_forward(x), atol=1e-6)
    silence = np.zeros(16000, np.float32)
    assert scorer.score_batch(batch_of([silence]))["ref_speech_ratio"][0] == 0.0


def test_distillmos_scores_each_utterance_alone_on_the_mos_scale():
    import torch

    from curator.scoring._compat import guard_torchaudio

    guard_torchaudio()  # distillmos imports torchaudio at module level
    pytest.importorskip("distillmos")

    from curator.scoring.scorers.distillmos import DistillMosScorer

    scorer = DistillMosScorer()
    scorer.setup()
    rng = np.random.default_rng(0)
    xs = [speechlike(rng, 16000, 1.0), speechlike(rng, 16000, 2.5)]
    out = scorer.score_batch(batch_of(xs))["ref_distillmos"]
    assert np.all((out >= 1) & (out <= 5))
    with torch.inference_mode():
        alone = float(scorer.model(torch.from_numpy(xs[0])[None]).reshape(()))
    assert out[0] == pytest.approx(alone, abs=1e-5)
    assert scorer.settings()["version"] is not None
