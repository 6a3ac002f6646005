"""NISQA scorer: a randomly initialised network saved in the official checkpoint layout, scored end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from curator.scoring.base import AudioBatch, ScoringError
from curator.scoring.nisqa_model import (
    DIM_OUTPUTS,
    MOS_MAX,
    MOS_MIN,
    NisqaFeatures,
    NisqaNet,
    log_mel,
    segments,
)
from curator.scoring.scorers.nisqa import NisqaOptions, NisqaScorer

from .conftest import speechlike

# the published CNN-SA-AP settings (config/train_nisqa_cnn_sa_ap.yaml, model NISQA_DIM as in weights/nisqa.tar)
OFFICIAL_ARGS = {
    "model": "NISQA_DIM", "ms_sr": 48000, "ms_fmax": 20000, "ms_n_fft": 4096, "ms_hop_length": 0.01,
    "ms_win_length": 0.02, "ms_n_mels": 48, "ms_seg_length": 15, "ms_seg_hop_length": 4, "ms_max_segments": 1300,
    "cnn_model": "adapt", "cnn_c_out_1": 16, "cnn_c_out_2": 32, "cnn_c_out_3": 64, "cnn_kernel_size": (3, 3),
    "cnn_dropout": 0.2, "cnn_fc_out_h": None, "cnn_pool_1": [24, 7], "cnn_pool_2": [12, 5], "cnn_pool_3": [6, 3],
    "td": "self_att", "td_sa_d_model": 64, "td_sa_nhead": 1, "td_sa_pos_enc": False, "td_sa_num_layers": 2,
    "td_sa_h": 64, "td_sa_dropout": 0.1, "td_2": "skip", "pool": "att", "pool_att_h": 128, "pool_att_dropout": 0,
}
# key names of the official modules (NISQA_lib.py) for the settings above, one representative per tensor group
OFFICIAL_KEYS = (
    "cnn.model.conv1.weight", "cnn.model.bn1.running_var", "cnn.model.conv6.weight", "cnn.model.bn6.num_batches_tracked",
    "time_dependency.model.linear.weight", "time_dependency.model.norm1.bias",
    "time_dependency.model.layers.0.self_attn.in_proj_weight", "time_dependency.model.layers.1.self_attn.out_proj.bias",
    "time_dependency.model.layers.1.linear1.weight", "time_dependency.model.layers.1.linear2.bias",
    "time_dependency.model.layers.1.norm2.weight", "pool_layers.0.model.linear1.weight",
    "pool_layers.4.model.linear3.bias",
)
SR = 16000
MOS_MID = 3.0  # middle of the ACR scale


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random NisqaNet saved as the official training loop saves it (args + model_state_dict + extras)."""
    torch.manual_seed(0)
    model = NisqaNet(OFFICIAL_ARGS)
    with torch.no_grad():  # non-trivial batch-norm statistics, so loading them is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1.0, 1.0)
                m.running_var.uniform_(0.5, 2.0)
        model.pool_layers[0].model.linear3.bias.fill_(MOS_MID)  # centre the MOS head so the clamp rarely bites
    path = tmp_path_factory.mktemp("nisqa") / "nisqa.tar"
    torch.save({"args": dict(OFFICIAL_ARGS), "model_state_dict": model.state_dict(), "epoch": 1,
                "model_name": "NISQA_DIM"}, path)
    return path


def scorer_for(path: Path | None) -> NisqaScorer:
    return NisqaScorer(NisqaOptions(model_path=None if path is None else str(path)))


def batch_of(signals: list[np.ndarray], speech_free: list[bool] | None = None) -> AudioBatch:
    n = len(signals)
    return AudioBatch([f"u{i}" for i in range(n)], np.full(n, SR), list(signals), list(signals),
                      np.array(speech_free or [False] * n))


def test_state_dict_uses_the_official_key_names():
    keys = set(NisqaNet(OFFICIAL_ARGS).state_dict())
    assert set(OFFICIAL_KEYS) <= keys
    assert not any(k.startswith(("pool.", "time_dependency_2")) for k in keys)
    assert {k.split(".")[1] for k in keys if k.startswith("pool_layers.")} == {str(i) for i in range(DIM_OUTPUTS)}
    single = set(NisqaNet({**OFFICIAL_ARGS, "model": "NISQA"}).state_dict())
    assert "pool.model.linear3.weight" in single and not any(k.startswith("pool_layers.") for k in single)


def test_segments_follow_the_official_count():
    feats = NisqaFeatures()
    x = torch.from_numpy(speechlike(np.random.default_rng(1), feats.sr, 1.0))
    spec = log_mel(x, feats.sr, feats)
    frames = 1 + feats.sr // int(feats.sr * feats.hop_seconds)  # centred frames of a 1 s signal
    assert spec.shape == (feats.n_mels, frames)
    assert float(spec.max() - spec.min()) <= 80.0 + 1e-3  # top_db floor
    segs = segments(spec, feats)
    assert segs.shape == (int(np.ceil((frames - feats.seg_length + 1) / feats.seg_hop)), 1, feats.n_mels,
                          feats.seg_length)
    assert torch.equal(segs[1, 0], spec[:, feats.seg_hop:feats.seg_hop + feats.seg_length])


def test_scores_are_finite_clamped_deterministic_and_padding_free(checkpoint: Path):
    rng = np.random.default_rng(0)
    signals = [speechlike(rng, SR, 0.6), speechlike(rng, SR, 1.3),
               (0.1 * rng.standard_normal(SR)).astype(np.float32)]
    scorer = scorer_for(checkpoint)
    scorer.setup()
    assert scorer.features.sr == OFFICIAL_ARGS["ms_sr"] and scorer.features.seg_hop == 4
    first = scorer.score_batch(batch_of(signals))["mos_nisqa"]
    assert first.shape == (3,) and np.all(np.isfinite(first))
    assert np.all((first >= MOS_MIN) & (first <= MOS_MAX))
    assert len(np.unique(first)) == len(first)  # the network responds to its input (not all clamped)
    again = scorer_for(checkpoint)
    again.setup()
    np.testing.assert_array_equal(again.score_batch(batch_of(signals))["mos_nisqa"], first)
    # a row's score does not depend on what it was batched with (padding is masked out)
    alone = scorer.score_batch(batch_of(signals[1:2]))["mos_nisqa"]
    np.testing.assert_allclose(alone, first[1:2], rtol=1e-5, atol=1e-5)
    silent = scorer.score_batch(batch_of(signals[:2], speech_free=[True, False]))["mos_nisqa"]
    assert np.isnan(silent[0]) and silent[1] == pytest.approx(first[1], abs=1e-5)
    assert scorer.settings()["model_sha256"] == again.settings()["model_sha256"]


@pytest.mark.parametrize("configured", [None, "does/not/exist/nisqa.tar"])
def test_missing_weights_say_where_to_get_them(configured: str | None):
    scorer = NisqaScorer(NisqaOptions(model_path=configured))
    with pytest.raises(ScoringError, match=r"NISQA weights not found at .*gabrielmittag/NISQA, weights/nisqa\.tar"
                                           r".*score\.options\.nisqa\.model_path"):
        scorer.setup()


def test_mismatched_weights_are_rejected(tmp_path: Path):
    state = NisqaNet({**OFFICIAL_ARGS, "model": "NISQA"}).state_dict()
    path = tmp_path / "nisqa.tar"
    torch.save({"args": dict(OFFICIAL_ARGS), "model_state_dict": state}, path)
    with pytest.raises(ScoringError, match="do not match"):
        scorer_for(path).setup()
