"""Downstream-task-independent metrics (need the reference): SpeechBERTScore and LPS.

Both load a transformers model from the local folder in ``MetricOptions.weights[<metric>]`` (a folder written by
``save_pretrained``): SpeechBERTScore the multilingual HuBERT of the official 2026 setting (mHuBERT-147, layer 8),
LPS a wav2vec2 CTC phoneme recogniser (facebook/wav2vec2-lv-60-espeak-cv-ft). Utterances run one at a time
(no padding, so scores do not depend on the batch), on ``MetricOptions.device``.
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
SBS_LAYER = 8  # hidden state (0 = CNN features after projection) the official 2026 script compares
SBS_WHAT = "a save_pretrained folder of utter-project/mHuBERT-147 (or another HuBERT/WavLM/wav2vec2 model)"
LPS_WHAT = "a save_pretrained folder of facebook/wav2vec2-lv-60-espeak-cv-ft (model and processor)"


def _load(metric: str, loader: Any, folder: Path, what: str) -> Any:
    try:
        return loader.from_pretrained(str(folder))
    except (OSError, ValueError) as exc:
        raise MetricUnavailable(metric, f"could not load '{folder}' ({exc}): put {what} there") from exc


@functools.cache
def _ssl_model(folder: Path, device: str) -> Any:
    guard_torchaudio()
    from transformers import AutoModel

    return _load("speech_bert_score", AutoModel, folder, SBS_WHAT).eval().to(device)


def speech_bert_score_pair(model: Any, est: np.ndarray, ref: np.ndarray, layer: int, device: str) -> float:
    """BERTScore precision of SSL features: mean over estimate frames of the best cosine with a reference frame."""
    import torch

    with torch.inference_mode():
        feats = [model(torch.from_numpy(np.asarray(x, np.float32))[None].to(device), output_hidden_states=True)
                 .hidden_states[layer][0] for x in (est, ref)]
        e, r = (torch.nn.functional.normalize(f, dim=-1) for f in feats)
        return float((e @ r.T).max(dim=1).values.mean())


@register_metric("speech_bert_score", "task_independent", sample_rate=SR,
                 resources=MetricResources(model="mHuBERT-147 (local folder)", gpu_capable=True,
                                           packages=("torch", "transformers")),
                 check=weights_check("speech_bert_score", SBS_WHAT))
def speech_bert_score(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
                      pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """SpeechBERTScore precision (layer 8 features), as the official script reports it."""
    model = _ssl_model(options.weights_path("speech_bert_score", SBS_WHAT), options.device)
    return np.array([speech_bert_score_pair(model, e, r, SBS_LAYER, options.device)
                     for e, r in zip(estimates, references, strict=True)])


@functools.cache
def _phoneme_recogniser(folder: Path, device: str) -> tuple[Any, Any]:
    guard_torchaudio()
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    processor = _load("lps", Wav2Vec2Processor, folder, LPS_WHAT)
    return _load("lps", Wav2Vec2ForCTC, folder, LPS_WHAT).eval().to(device), processor


def phonemes(model: Any, processor: Any, x: np.ndarray, device: str) -> str:
    """Greedy CTC phoneme string of a 16 kHz signal, spaces removed."""
    import torch

    inputs = processor(np.asarray(x, np.float32), sampling_rate=SR, return_tensors="pt").input_values.to(device)
    with torch.inference_mode():
        ids = model(inputs).logits.argmax(dim=-1)
    return processor.batch_decode(ids.cpu())[0].replace(" ", "")


@register_metric("lps", "task_independent", sample_rate=SR,
                 resources=MetricResources(model="wav2vec2 phoneme CTC (local folder)", gpu_capable=True,
                                           packages=("torch", "transformers")),
                 check=weights_check("lps", LPS_WHAT))
def lps(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
        pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Levenshtein phoneme similarity 1 - d(est, ref) / len(ref); NaN when the reference has no phonemes."""
    model, processor = _phoneme_recogniser(options.weights_path("lps", LPS_WHAT), options.device)
    out = np.full(len(estimates), np.nan)
    for i, (e, r) in enumerate(zip(estimates, references, strict=True)):
        ref_ph = phonemes(model, processor, r, options.device)
        if ref_ph:
            out[i] = 1.0 - edit_distance(phonemes(model, processor, e, options.device), ref_ph) / len(ref_ph)
    return out
