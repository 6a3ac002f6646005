"""Model-based metrics: availability reasons, DNSMOS and speaker similarity on real recordings, and the
transformers loaders on tiny randomly initialised models of the real classes saved to a local folder."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from curator.audio import resample
from curator.evaluation.metrics import (
    DEFAULT_OPTIONS,
    METRICS,
    MetricOptions,
    MetricUnavailable,
    check_available,
    compute_metrics,
    split_available,
)
from curator.scoring._compat import guard_torchaudio

SR = 16000


@pytest.fixture(scope="module")
def arctic() -> np.ndarray:
    """The CMU ARCTIC recording pysptk ships (one real speaker), at 16 kHz."""
    pysptk_util = pytest.importorskip("pysptk.util")
    x, sr = sf.read(pysptk_util.example_audio_file(), dtype="float32")
    return resample(x, sr, SR)


def run(name: str, est: list[np.ndarray], ref: list[np.ndarray | None], options: MetricOptions = DEFAULT_OPTIONS
        ) -> np.ndarray:
    return compute_metrics([METRICS.get(name)], est, ref, np.full(len(est), SR), pool=None, options=options)[name]


def test_unavailable_metrics_give_a_reason(tmp_path: Path) -> None:
    nisqa = METRICS.get("nisqa")
    assert "nisqa.tar" in (check_available(nisqa) or "")
    missing = tmp_path / "nope.tar"
    reason = check_available(nisqa, MetricOptions(weights={"nisqa": str(missing)}))
    assert reason is not None and str(missing) in reason
    ok, skipped = split_available([METRICS.get("si_sdr"), nisqa, METRICS.get("utmos")])
    assert [m.name for m in ok] == ["si_sdr"] and set(skipped) == {"nisqa", "utmos"}
    x = np.zeros(SR, np.float32)
    with pytest.raises(MetricUnavailable, match="nisqa"):
        run("nisqa", [x], [None])


def test_dnsmos_prefers_clean_speech(arctic: np.ndarray) -> None:
    noisy = arctic + np.random.default_rng(0).normal(0, 0.05, arctic.size).astype(np.float32)
    for name in ("dnsmos_ovrl", "dnsmos_bak"):
        clean_score, noisy_score = run(name, [arctic, noisy], [None, None])
        assert 1.0 <= noisy_score < clean_score <= 5.0, name


def test_speaker_similarity_separates_speakers(arctic: np.ndarray) -> None:
    tts = pytest.importorskip("curator.datasets.mini.tts")
    try:
        other = tts.Synthesizer().synthesize("Please call Stella and ask her to bring these things.", "en",
                                             tts.Speaker("b", warp=1.0, length_scale=1.0, tilt=0.0))
    except tts.TTSUnavailableError as exc:
        pytest.skip(str(exc))
    other = resample(other, tts.PIPER_SR, SR)
    half = arctic.size // 2
    same, different = run("spk_sim", [arctic[:half], other], [arctic[half:], arctic])
    assert same > different + 0.1
    assert run("spk_sim", [arctic], [arctic])[0] == pytest.approx(1.0, abs=1e-5)


def test_speech_bert_score_loads_a_local_model(tmp_path: Path, arctic: np.ndarray) -> None:
    guard_torchaudio()
    transformers = pytest.importorskip("transformers")
    config = transformers.HubertConfig(hidden_size=32, num_hidden_layers=8, num_attention_heads=2,
                                       intermediate_size=64, conv_dim=(32, 32), conv_stride=(5, 4),
                                       conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                                       num_conv_pos_embedding_groups=4)
    transformers.HubertModel(config).save_pretrained(tmp_path / "mhubert")
    options = MetricOptions(weights={"speech_bert_score": str(tmp_path / "mhubert")})
    assert check_available(METRICS.get("speech_bert_score"), options) is None
    noisy = arctic + np.random.default_rng(0).normal(0, 0.3, arctic.size).astype(np.float32)
    same, degraded = run("speech_bert_score", [arctic, noisy], [arctic, arctic], options)
    assert same == pytest.approx(1.0, abs=1e-5) and degraded < same


def test_lps_loads_a_local_phoneme_recogniser(tmp_path: Path, arctic: np.ndarray) -> None:
    guard_torchaudio()
    transformers = pytest.importorskip("transformers")
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "a": 5, "b": 6, "k": 7, "t": 8}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), word_delimiter_token="|")
    extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR, return_attention_mask=True)
    folder = tmp_path / "phonemes"
    transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = transformers.Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=64, conv_dim=(32, 32),
                                         conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                                         num_conv_pos_embedding_groups=4, pad_token_id=0)
    model = transformers.Wav2Vec2ForCTC(config)
    model.lm_head.bias.data[:] = 0.0
    model.lm_head.bias.data[vocab["k"]] = 50.0  # a non-blank phoneme wins every frame: a non-empty reference
    model.save_pretrained(folder)
    options = MetricOptions(weights={"lps": str(folder)})
    assert run("lps", [arctic], [arctic], options)[0] == 1.0
    with pytest.raises(MetricUnavailable, match="lps"):
        run("lps", [arctic], [arctic], MetricOptions(weights={"lps": str(tmp_path)}))  # no model files there


def test_character_accuracy_with_pocketsphinx(arctic: np.ndarray) -> None:
    pytest.importorskip("pocketsphinx")
    noise = np.random.default_rng(0).normal(0, 0.5, arctic.size).astype(np.float32)
    same, noisy = run("cacc", [arctic, arctic + noise], [arctic, arctic])
    assert same == 1.0 and (math.isnan(noisy) or noisy < 1.0)
