"""Downstream-task-independent metrics (need the reference): SpeechBERTScore and LPS.

Both load a transformers model from the local folder in ``MetricOptions.weights[<metric>]`` (a folder written by
``save_pretrained``): SpeechBERTScore the multilingual HuBERT of the official 2026 setting (mHuBERT-147, layer 8),
LPS a wav2vec2 CTC phoneme recogniser (facebook/wav2vec2-lv-60-espeak-cv-ft), on ``MetricOptions.device``.

Batching (``MetricOptions.batch`` signals per forward pass; 1 on CPU unless ``batch_on_cpu``): estimates and
references go through the model together, sorted by length. A model whose feature encoder uses layer norm gets
zero padding with an attention mask and its outputs are cut to each signal's frames. In a group-norm model
(mHuBERT-147) the first conv layer normalises over the whole input, so padding would change it: SpeechBERTScore
runs that conv encoder per signal and the transformer on the masked batch of frames; LPS batches only signals of
equal length (an estimate with its reference). Batched values equal per-utterance ones to float tolerance
(checked to 1e-4 in tests/evaluation/test_metric_models.py; on cuda up to 2e-4, TF32 convolutions).
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
    frame_counts,
    length_batches,
    model_batches,
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
        return _bert_precision(*feats)


def _bert_precision(est: Any, ref: Any) -> float:
    import torch

    e, r = (torch.nn.functional.normalize(f, dim=-1) for f in (est, ref))
    return float((e @ r.T).max(dim=1).values.mean())


def _separable(model: Any) -> bool:
    """Whether the model's conv feature encoder can run per signal and its transformer on a masked batch."""
    return (getattr(model.config, "feat_extract_norm", None) == "group" and not getattr(model.config, "add_adapter", False)
            and all(hasattr(model, a) for a in ("feature_extractor", "feature_projection", "encoder")))


def _ssl_features_separable(model: Any, signals: Sequence[np.ndarray], layer: int, device: str,
                            batch: int) -> list[Any]:
    """Group-norm models: the conv feature encoder (whose group norm spans the whole input) on each signal alone,
    then projection and transformer on the padded batch of frames with a frame mask, as the model's ``forward``
    chains them: each signal's frames are the per-utterance ones, and the transformer, the bulk of the cost,
    batches signals of any length."""
    import torch

    out: list[Any] = [None] * len(signals)
    for idx in length_batches([len(x) for x in signals], batch):
        with torch.inference_mode():
            feats = [model.feature_extractor(torch.from_numpy(np.asarray(signals[i], np.float32))[None].to(device))
                     .transpose(1, 2)[0] for i in idx]
            frames = torch.tensor([len(f) for f in feats], device=device)
            proj = model.feature_projection(torch.nn.utils.rnn.pad_sequence(feats, batch_first=True))
            proj = proj[0] if isinstance(proj, tuple) else proj  # wav2vec2 and WavLM also return the normed input
            mask = torch.arange(proj.shape[1], device=device)[None] < frames[:, None]
            hidden = _encoder_layer(model, proj, mask if len(set(frames.tolist())) > 1 else None, layer)
        for j, (i, n) in enumerate(zip(idx, frames.tolist(), strict=True)):
            out[i] = hidden[j, :n]
    return out


def _encoder_layer(model: Any, frames: Any, mask: Any, layer: int) -> Any:
    """``hidden_states[layer]`` of the model's encoder on projected ``frames``: the input of transformer layer 0
    for ``layer`` 0, else the output of layer ``layer - 1`` (read by a hook: a bare encoder call does not collect
    hidden states in every transformers version)."""
    captured: list[Any] = []
    if layer == 0:
        def keep_input(module: Any, args: tuple, kwargs: dict) -> None:
            captured.append(args[0] if args else kwargs["hidden_states"])

        handle = model.encoder.layers[0].register_forward_pre_hook(keep_input, with_kwargs=True)
    else:
        def keep_output(module: Any, args: tuple, output: Any) -> None:
            captured.append(output[0] if isinstance(output, tuple) else output)

        handle = model.encoder.layers[layer - 1].register_forward_hook(keep_output)
    try:
        model.encoder(frames, attention_mask=mask)
    finally:
        handle.remove()
    return captured[0]


def ssl_features(model: Any, signals: Sequence[np.ndarray], layer: int, device: str, batch: int) -> list[Any]:
    """Hidden states ``layer`` of every signal, ``batch`` signals per forward pass.

    Layer-norm models: zero padding with an attention mask (:func:`model_batches`); group-norm models with the
    usual submodules: :func:`_ssl_features_separable`; others: batches of equal length only.
    """
    import torch

    if _separable(model):
        return _ssl_features_separable(model, signals, layer, device, batch)
    out: list[Any] = [None] * len(signals)
    for idx, use_mask in model_batches(model, signals, batch):
        lengths = [len(signals[i]) for i in idx]
        wave = torch.zeros(len(idx), max(lengths))
        mask = torch.zeros(len(idx), max(lengths), dtype=torch.long)
        for j, (i, n) in enumerate(zip(idx, lengths, strict=True)):
            wave[j, :n] = torch.from_numpy(np.asarray(signals[i], np.float32))
            mask[j, :n] = 1
        with torch.inference_mode():
            hidden = model(wave.to(device), attention_mask=mask.to(device) if use_mask else None,
                           output_hidden_states=True).hidden_states[layer]
        for j, (i, n) in enumerate(zip(idx, frame_counts(model, lengths), strict=True)):
            out[i] = hidden[j, :n]
    return out


@register_metric("speech_bert_score", "task_independent", sample_rate=SR,
                 resources=MetricResources(model="mHuBERT-147 (local folder)", gpu_capable=True, batched=True,
                                           packages=("torch", "transformers")),
                 check=weights_check("speech_bert_score", SBS_WHAT))
def speech_bert_score(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
                      pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """SpeechBERTScore precision (layer 8 features), as the official script reports it."""
    model = _ssl_model(options.weights_path("speech_bert_score", SBS_WHAT), options.device)
    if options.batch == 1:
        return np.array([speech_bert_score_pair(model, e, r, SBS_LAYER, options.device)
                         for e, r in zip(estimates, references, strict=True)])
    feats = ssl_features(model, [*estimates, *references], SBS_LAYER, options.device, options.batch)
    n = len(estimates)
    return np.array([_bert_precision(feats[i], feats[n + i]) for i in range(n)])


@functools.cache
def _phoneme_recogniser(folder: Path, device: str) -> tuple[Any, Any]:
    guard_torchaudio()
    from transformers import Wav2Vec2ForCTC, Wav2Vec2Processor

    processor = _load("lps", Wav2Vec2Processor, folder, LPS_WHAT)
    return _load("lps", Wav2Vec2ForCTC, folder, LPS_WHAT).eval().to(device), processor


def phoneme_strings(model: Any, processor: Any, signals: Sequence[np.ndarray], device: str, batch: int) -> list[str]:
    """:func:`phonemes` of every signal, ``batch`` signals per forward pass (see :func:`model_batches`)."""
    import torch

    out = [""] * len(signals)
    for idx, use_mask in model_batches(model, signals, batch):
        inputs = processor([np.asarray(signals[i], np.float32) for i in idx], sampling_rate=SR, return_tensors="pt",
                           padding=True, return_attention_mask=True)
        with torch.inference_mode():
            ids = model(inputs.input_values.to(device),
                        attention_mask=inputs.attention_mask.to(device) if use_mask else None).logits.argmax(dim=-1)
        for j, (i, n) in enumerate(zip(idx, frame_counts(model, [len(signals[i]) for i in idx]), strict=True)):
            out[i] = processor.batch_decode(ids[j:j + 1, :n].cpu())[0].replace(" ", "")
    return out


def phonemes(model: Any, processor: Any, x: np.ndarray, device: str) -> str:
    """Greedy CTC phoneme string of a 16 kHz signal, spaces removed."""
    import torch

    inputs = processor(np.asarray(x, np.float32), sampling_rate=SR, return_tensors="pt").input_values.to(device)
    with torch.inference_mode():
        ids = model(inputs).logits.argmax(dim=-1)
    return processor.batch_decode(ids.cpu())[0].replace(" ", "")


@register_metric("lps", "task_independent", sample_rate=SR,
                 resources=MetricResources(model="wav2vec2 phoneme CTC (local folder)", gpu_capable=True, batched=True,
                                           packages=("torch", "transformers")),
                 check=weights_check("lps", LPS_WHAT))
def lps(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray], srs: np.ndarray,
        pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """Levenshtein phoneme similarity 1 - d(est, ref) / len(ref); NaN when the reference has no phonemes."""
    model, processor = _phoneme_recogniser(options.weights_path("lps", LPS_WHAT), options.device)
    out = np.full(len(estimates), np.nan)
    if options.batch == 1:
        for i, (e, r) in enumerate(zip(estimates, references, strict=True)):
            ref_ph = phonemes(model, processor, r, options.device)
            if ref_ph:
                out[i] = 1.0 - edit_distance(phonemes(model, processor, e, options.device), ref_ph) / len(ref_ph)
        return out
    strings = phoneme_strings(model, processor, [*estimates, *references], options.device, options.batch)
    n = len(estimates)
    for i in range(n):
        if strings[n + i]:
            out[i] = 1.0 - edit_distance(strings[i], strings[n + i]) / len(strings[n + i])
    return out
