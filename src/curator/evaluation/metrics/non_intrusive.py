"""Non-intrusive metrics (no reference): DNSMOS P.835, DistillMOS, NISQA v2, UTMOS and SCOREQ.

DNSMOS and DistillMOS ship their weights in packages (speechmos, distillmos) and work offline. NISQA, UTMOS and
SCOREQ load weights from the local path given in ``MetricOptions.weights[<metric>]`` and are unavailable, with
a message naming the missing file, until it is there. DNSMOS reuses the project's DNSMOS scorer (the official
9.01 s windows with a 1 s hop, every window scored, calibrated P.835 outputs averaged).

Batching (``MetricOptions.batch`` utterances per forward pass; 1 on CPU unless ``batch_on_cpu``): DNSMOS stacks
the fixed-size windows of a batch of utterances into one ONNX run; DistillMOS cuts each utterance into its own
fixed-size crops exactly as its ``forward`` does and scores the crops of a batch together; NISQA pads the mel
segments and passes their counts (its time pooling is masked); UTMOS has no padding mask, so only utterances of
equal length share a batch. Each model sees the same samples as in a per-utterance run, so batched values equal
per-utterance ones to float tolerance (``tests/evaluation/test_metric_models.py`` checks 1e-4 on CPU; on an H200,
DistillMOS differs by 1.5e-4, TF32 convolutions). SCOREQ's package scores one file per call and is not batched.
DNSMOS runs on onnxruntime's CUDA provider only where onnxruntime-gpu is installed, else on CPU.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import tempfile
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

SR = 16000
DNSMOS_OUTPUTS = ("sig", "bak", "ovrl")
NISQA_WHAT = "the NISQA v2 checkpoint nisqa.tar (github.com/gabrielmittag/NISQA, weights/nisqa.tar)"
UTMOS_WHAT = ("a clone of github.com/tarepan/SpeechMOS (its hubconf.py), with utmos22_strong_step7459_v1.pt "
              "from its v1.0.0 release in <TORCH_HOME>/hub/checkpoints")
SCOREQ_WHAT = "a folder whose pt-models/ holds SCOREQ's natural-domain no-reference checkpoint"


@functools.cache
def _dnsmos_session(device: str) -> tuple[Any, list[np.poly1d]]:
    import onnxruntime as ort

    from curator.determinism import ort_session_options
    from curator.scoring.scorers.dnsmos import CALIBRATION, DnsmosOptions, onnx_providers

    session = ort.InferenceSession(str(DnsmosOptions().resolved_model()), sess_options=ort_session_options(),
                                   providers=onnx_providers(device))  # the same scores on every x86_64 CPU
    return session, [np.poly1d(c) for c in CALIBRATION[False]]


_DNSMOS_LAST: dict[tuple, np.ndarray] = {}
"""The last batch's DNSMOS, keyed by the signals' content: SIG, BAK and OVRL are three registered metrics that
one model run computes together, so the second and third metric of a batch reuse the first's run."""


def dnsmos(signals: Sequence[np.ndarray], device: str = "cpu", batch: int = 1) -> np.ndarray:
    """``(n, 3)`` calibrated DNSMOS P.835 SIG, BAK, OVRL of 16 kHz signals, averaged over all windows.

    ``batch`` > 1: the windows of ``batch`` utterances go through the model in one run.
    """
    key = (device, batch, *(hashlib.blake2b(np.ascontiguousarray(x, np.float32).tobytes(), digest_size=16).digest()
                     for x in signals))
    if key not in _DNSMOS_LAST:
        _DNSMOS_LAST.clear()
        _DNSMOS_LAST[key] = _dnsmos(signals, device) if batch == 1 else _dnsmos_batched(signals, device, batch)
    return _DNSMOS_LAST[key]


def _dnsmos(signals: Sequence[np.ndarray], device: str) -> np.ndarray:
    from curator.scoring.scorers.dnsmos import windows

    session, calibration = _dnsmos_session(device)
    name = session.get_inputs()[0].name
    out = np.empty((len(signals), len(DNSMOS_OUTPUTS)))
    for i, x in enumerate(signals):
        # one window per call: on CPU, onnxruntime is slower per window on stacked windows
        raw = np.stack([session.run(None, {name: w[None].astype(np.float32)})[0][0]
                        for w in windows(np.asarray(x, np.float32))])
        out[i] = [np.mean(p(raw[:, k])) for k, p in enumerate(calibration)]
    return out


def _dnsmos_batched(signals: Sequence[np.ndarray], device: str, batch: int) -> np.ndarray:
    from curator.scoring.scorers.dnsmos import windows

    session, calibration = _dnsmos_session(device)
    name = session.get_inputs()[0].name
    out = np.empty((len(signals), len(DNSMOS_OUTPUTS)))
    for lo in range(0, len(signals), batch):
        wins = [windows(np.asarray(x, np.float32)) for x in signals[lo:lo + batch]]
        raw = session.run(None, {name: np.concatenate(wins).astype(np.float32)})[0]
        bounds = np.cumsum([0] + [len(w) for w in wins])
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            out[lo + i] = [np.mean(p(raw[a:b, k])) for k, p in enumerate(calibration)]
    return out


def _register_dnsmos(which: str) -> None:
    col = DNSMOS_OUTPUTS.index(which)

    @register_metric(f"dnsmos_{which}", "non_intrusive", needs_reference=False, sample_rate=SR,
                     resources=MetricResources(model="DNSMOS P.835 ONNX (speechmos)", gpu_capable=True,
                                               batched=True, packages=("speechmos", "onnxruntime")))
    def metric(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
               pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
        return dnsmos(estimates, options.device, options.batch)[:, col]

    metric.__doc__ = f"DNSMOS P.835 {which.upper()} (1..5)."


for _which in DNSMOS_OUTPUTS:
    _register_dnsmos(_which)


def distillmos_dtype(device: str) -> Any:
    """float64 on CPU, float32 on a GPU. In float32 the model's CPU kernels leave scores CPU-dependent in the 7th
    digit (1.23120415 here, 1.23120427 under ``qemu-x86_64 -cpu EPYC-Rome``, an AVX2-only CPU); in float64 they
    differed by 8e-16 at most, far below the 6 decimals the per-utterance table keeps, and the float32 score
    itself was 6e-5 from the float64 one on that input (a pure tone). It costs about 2.2x on CPU."""
    import torch

    return torch.float64 if device == "cpu" else torch.float32


@functools.cache
def _distillmos(device: str) -> Any:
    from curator.scoring._compat import guard_torchaudio

    guard_torchaudio()
    import distillmos

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the weights path on load
        return distillmos.ConvTransformerSQAModel().eval().to(device=device, dtype=distillmos_dtype(device))


@register_metric("distillmos", "non_intrusive", needs_reference=False, sample_rate=SR,
                 resources=MetricResources(model="DistillMOS (distillmos package)", gpu_capable=True,
                                           batched=True, packages=("distillmos", "torch")))
def distillmos(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
               pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """DistillMOS (1..5).

    The model's ``forward`` crops a ``(batch, time)`` input to crops shared by the whole batch, so utterances of
    different lengths cannot simply be stacked: the batched path makes each utterance's crops itself
    (:func:`distillmos_crops`) and averages the model's score over them, as ``forward`` does for one utterance.
    """
    import torch

    model = _distillmos(options.device)
    dtype = distillmos_dtype(options.device)
    with torch.inference_mode():
        if options.batch == 1:
            return np.array([float(model(torch.from_numpy(np.asarray(x, np.float32))[None].to(options.device, dtype))
                                   .reshape(())) for x in estimates])
        out = np.empty(len(estimates))
        for lo in range(0, len(estimates), options.batch):
            crops = [distillmos_crops(np.asarray(x, np.float32)) for x in estimates[lo:lo + options.batch]]
            # a (n, SEQ_LEN) input is one crop per row to forward: it scores every row on its own
            scores = model(torch.from_numpy(np.concatenate(crops)).to(options.device, dtype)).reshape(-1).cpu().numpy()
            bounds = np.cumsum([0] + [len(c) for c in crops])
            out[lo:lo + len(crops)] = [np.mean(scores[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return out


def distillmos_crops(x: np.ndarray) -> np.ndarray:
    """``(n, SEQ_LEN)`` crops of one 16 kHz signal as DistillMOS's ``forward`` cuts them: zero-padded to one crop
    when shorter, else crops spread evenly from start to end at most ``MAX_HOP_LEN`` samples apart."""
    from distillmos.sqa import MAX_HOP_LEN, SEQ_LEN

    over = len(x) - SEQ_LEN
    if over <= 0:
        return np.pad(x, (0, -over))[None]
    hops = int(np.ceil(over / MAX_HOP_LEN)) + 1
    return np.stack([x[int(c * over):int(c * over) + SEQ_LEN] for c in np.linspace(0, 1, hops)])


@functools.cache
def _nisqa(path: Path, device: str) -> tuple[Any, Any]:
    from curator.scoring.base import ScoringError
    from curator.scoring.nisqa_model import NisqaFeatures
    from curator.scoring.scorers.nisqa import build_model, load_checkpoint

    try:
        ckpt = load_checkpoint(path)
        return build_model(ckpt).to(device), NisqaFeatures.from_args(ckpt["args"])
    except ScoringError as exc:
        raise MetricUnavailable("nisqa", str(exc)) from exc


@register_metric("nisqa", "non_intrusive", needs_reference=False,
                 resources=MetricResources(model="NISQA v2 (local nisqa.tar)", gpu_capable=True, batched=True,
                                           packages=("torch",)),
                 check=weights_check("nisqa", NISQA_WHAT))
def nisqa(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
          pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """NISQA v2 MOS (1..5) at the checkpoint's rate (48 kHz for the published weights).

    A batch pads the utterances' mel segments and passes their counts; the model's pooling ignores the padding.
    """
    from curator.evaluation.metrics import at_rate
    from curator.scoring.nisqa_model import predict_mos

    model, feats = _nisqa(options.weights_path("nisqa", NISQA_WHAT), options.device)
    signals = at_rate(estimates, srs, feats.sr)
    rates = [feats.sr or int(r) for r in srs]
    out = np.empty(len(signals))
    for lo in range(0, len(signals), options.batch):
        hi = lo + options.batch
        out[lo:hi] = predict_mos(model, feats, signals[lo:hi], rates[lo:hi], options.device)
    return out


@functools.cache
def _utmos(folder: Path, device: str) -> Any:
    import torch

    if not (folder / "hubconf.py").is_file():
        raise MetricUnavailable("utmos", f"'{folder}' has no hubconf.py: put {UTMOS_WHAT}")
    try:
        model = torch.hub.load(str(folder), "utmos22_strong", source="local", trust_repo=True)
    except (OSError, RuntimeError) as exc:  # the weights are fetched from the hub cache or the network
        raise MetricUnavailable("utmos", f"could not load utmos22_strong from '{folder}' ({exc}): put {UTMOS_WHAT}"
                                ) from exc
    return model.eval().to(device)


@register_metric("utmos", "non_intrusive", needs_reference=False, sample_rate=SR,
                 resources=MetricResources(model="UTMOS22 strong (local SpeechMOS clone)", gpu_capable=True,
                                           batched=True, packages=("torch",)),
                 check=weights_check("utmos", UTMOS_WHAT))
def utmos(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
          pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """UTMOS22 strong (1..5), as the official script calls SpeechMOS's ``utmos22_strong``.

    The model takes no padding mask (its SSL front end and frame mean would see the zeros), so a batch holds only
    utterances of equal length.
    """
    import torch

    from curator.evaluation.metrics import length_batches

    model = _utmos(options.weights_path("utmos", UTMOS_WHAT), options.device)
    out = np.empty(len(estimates))
    with torch.inference_mode():
        for idx in length_batches([len(x) for x in estimates], options.batch, equal_length=True):
            wave = torch.from_numpy(np.stack([np.asarray(estimates[i], np.float32) for i in idx]))
            out[idx] = model(wave.to(options.device), SR).reshape(-1).double().cpu().numpy()
    return out


@functools.cache
def _scoreq(folder: Path, device: str) -> Any:
    import scoreq

    if not (folder / "pt-models").is_dir():
        raise MetricUnavailable("scoreq", f"'{folder}/pt-models' not found: put {SCOREQ_WHAT}")
    with contextlib.chdir(folder):  # scoreq looks for (and would download into) ./pt-models
        return scoreq.Scoreq(data_domain="natural", mode="nr")


@register_metric("scoreq", "non_intrusive", needs_reference=False, sample_rate=SR,
                 resources=MetricResources(model="SCOREQ natural NR (local pt-models)",
                                           packages=("scoreq",)),
                 check=weights_check("scoreq", SCOREQ_WHAT))
def scoreq(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
           pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """SCOREQ no-reference MOS, natural domain (the official 2026 setting); scoreq reads audio from files."""
    import soundfile as sf

    folder = options.weights_path("scoreq", SCOREQ_WHAT)
    model = _scoreq(folder, options.device)
    out = np.empty(len(estimates))
    with tempfile.TemporaryDirectory() as tmp:
        for i, x in enumerate(estimates):
            path = Path(tmp) / f"{i}.wav"
            sf.write(path, np.asarray(x, np.float32), SR)
            out[i] = float(model.predict(test_path=str(path), ref_path=None))
    return out
