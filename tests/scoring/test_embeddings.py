"""Embedding backends: the offline log-mel default, transformers WavLM/HuBERT loaded from a folder, s3prl guard."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from curator.scoring._compat import guard_torchaudio
from curator.scoring.base import ScoringError, pad
from curator.scoring.embeddings import EMBEDDERS, EmbeddingOptions

from .conftest import speechlike


def signals(n: int = 3, sr: int = 16000) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [speechlike(rng, sr, s) + 0.01 * rng.standard_normal(int(s * sr)).astype(np.float32)
            for s in np.linspace(0.6, 1.2, n)]


def backend(**options: object):
    opts = EmbeddingOptions(**options)  # type: ignore[arg-type]
    b = EMBEDDERS.get(opts.backend)(opts)
    b.setup()
    return b


def test_logmel_is_per_utterance_whatever_the_padding():
    b = backend(backend="logmel", n_mels=24)
    xs = signals()
    together = b.embed(*pad(xs))
    alone = np.concatenate([b.embed(*pad([x])) for x in xs])
    assert together.shape == (3, b.dim) == (3, 48) and together.dtype == np.float32
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_logmel_ignores_loudness_and_sees_the_noise_colour():
    b = backend(backend="logmel")
    x = signals(1)[0]
    rng = np.random.default_rng(1)
    noisy = x + 0.2 * rng.standard_normal(x.size).astype(np.float32)
    e = b.embed(*pad([x, 0.25 * x, noisy]))
    cos = e @ e.T / np.outer(np.linalg.norm(e, axis=1), np.linalg.norm(e, axis=1))
    assert cos[0, 1] > 0.99 and cos[0, 2] < cos[0, 1] - 0.05


def save_tiny(kind: str, folder: Path, with_mask: bool) -> None:
    """A randomly initialised model of the real class, saved the way hub checkpoints are laid out."""
    guard_torchaudio()
    import transformers as tf

    common = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                  conv_dim=(16,) * 7, num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                  feat_extract_norm="layer" if with_mask else "group")
    config, model_cls = {"wavlm": (tf.WavLMConfig, tf.WavLMModel), "hubert": (tf.HubertConfig, tf.HubertModel)}[kind]
    import torch

    torch.manual_seed(0)
    model_cls(config(**common)).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(do_normalize=with_mask, return_attention_mask=with_mask).save_pretrained(folder)


@pytest.mark.parametrize(("kind", "with_mask"), [("wavlm", True), ("hubert", False)])
def test_transformers_model_from_a_local_folder(tmp_path: Path, kind: str, with_mask: bool):
    pytest.importorskip("transformers")
    save_tiny(kind, tmp_path / kind, with_mask)
    b = backend(backend="transformers", model=str(tmp_path / kind), layer=1, pooling="meanstd")
    assert b.dim == 64 and b.use_mask == with_mask and b.normalize == with_mask
    xs = signals()
    together = b.embed(*pad(xs))
    alone = np.concatenate([b.embed(*pad([x])) for x in xs])
    assert together.shape == (3, 64) and np.isfinite(together).all()
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-4)  # padding never leaks into a row
    assert not np.allclose(together[0], together[1])
    settings = b.settings()
    assert settings["model"] == kind and len(settings["config_sha256"]) == 64 and settings["weights"]


def test_transformers_errors_name_what_is_missing(tmp_path: Path):
    with pytest.raises(ScoringError, match="score.options.embedding.model"):
        backend(backend="transformers")
    with pytest.raises(ScoringError, match="huggingface-cli download"):
        backend(backend="transformers", model=str(tmp_path / "absent"))
    save_tiny("wavlm", tmp_path / "w", True)
    with pytest.raises(ScoringError, match="layer = 7 is out of range"):
        backend(backend="transformers", model=str(tmp_path / "w"), layer=7)


def test_s3prl_backend_reports_a_missing_or_broken_install():
    try:
        from s3prl.nn import S3PRLUpstream  # noqa: F401
    except Exception:
        with pytest.raises(ScoringError, match="s3prl"):
            backend(backend="s3prl", model="wavlm_base_plus")
    else:
        with pytest.raises(ScoringError, match="unknown s3prl upstream"):
            backend(backend="s3prl", model="no_such_upstream")


def test_broken_torchaudio_is_replaced_by_an_explaining_stand_in():
    if guard_torchaudio():
        pytest.skip("torchaudio loads here: nothing to guard")
    import torchaudio

    with pytest.raises(AttributeError, match="does not load beside this torch"):
        torchaudio.load  # noqa: B018
    assert guard_torchaudio() is False  # idempotent
