"""Non-intrusive metrics (no reference): DNSMOS P.835, DistillMOS, NISQA v2, UTMOS and SCOREQ.

DNSMOS and DistillMOS ship their weights in packages (speechmos, distillmos) and work offline. NISQA, UTMOS and
SCOREQ load weights from the local path given in ``MetricOptions.weights[<metric>]`` and are unavailable, with
a message naming the missing file, until it is there. DNSMOS reuses the project's DNSMOS scorer (the official
9.01 s windows with a 1 s hop, every window scored, calibrated P.835 outputs averaged).
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

    from curator.scoring.scorers.dnsmos import CALIBRATION, DnsmosOptions

    providers = ["CPUExecutionProvider"]
    if device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    session = ort.InferenceSession(str(DnsmosOptions().resolved_model()), providers=providers)
    return session, [np.poly1d(c) for c in CALIBRATION[False]]


_DNSMOS_LAST: dict[tuple, np.ndarray] = {}
"""The last batch's DNSMOS, keyed by the signals' content: SIG, BAK and OVRL are three registered metrics that
one model run computes together, so the second and third metric of a batch reuse the first's run."""


def dnsmos(signals: Sequence[np.ndarray], device: str = "cpu") -> np.ndarray:
    """``(n, 3)`` calibrated DNSMOS P.835 SIG, BAK, OVRL of 16 kHz signals, averaged over all windows."""
    key = (device, *(hashlib.blake2b(np.ascontiguousarray(x, np.float32).tobytes(), digest_size=16).digest()
                     for x in signals))
    if key not in _DNSMOS_LAST:
        _DNSMOS_LAST.clear()
        _DNSMOS_LAST[key] = _dnsmos(signals, device)
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


def _register_dnsmos(which: str) -> None:
    col = DNSMOS_OUTPUTS.index(which)

    @register_metric(f"dnsmos_{which}", "non_intrusive", needs_reference=False, sample_rate=SR,
                     resources=MetricResources(model="DNSMOS P.835 ONNX (speechmos)", gpu_capable=True,
                                               packages=("speechmos", "onnxruntime")))
    def metric(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
               pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
        return dnsmos(estimates, options.device)[:, col]

    metric.__doc__ = f"DNSMOS P.835 {which.upper()} (1..5)."


for _which in DNSMOS_OUTPUTS:
    _register_dnsmos(_which)


@functools.cache
def _distillmos(device: str) -> Any:
    from curator.scoring._compat import guard_torchaudio

    guard_torchaudio()
    import distillmos

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the weights path on load
        return distillmos.ConvTransformerSQAModel().eval().to(device)


@register_metric("distillmos", "non_intrusive", needs_reference=False, sample_rate=SR,
                 resources=MetricResources(model="DistillMOS (distillmos package)", gpu_capable=True,
                                           packages=("distillmos", "torch")))
def distillmos(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
               pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """DistillMOS (1..5); one utterance per call (the model crops a batch to shared windows)."""
    import torch

    model = _distillmos(options.device)
    with torch.inference_mode():
        return np.array([float(model(torch.from_numpy(np.asarray(x, np.float32))[None].to(options.device)).reshape(()))
                         for x in estimates])


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
                 resources=MetricResources(model="NISQA v2 (local nisqa.tar)", gpu_capable=True, packages=("torch",)),
                 check=weights_check("nisqa", NISQA_WHAT))
def nisqa(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
          pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """NISQA v2 MOS (1..5) at the checkpoint's rate (48 kHz for the published weights)."""
    from curator.evaluation.metrics import at_rate
    from curator.scoring.nisqa_model import predict_mos

    model, feats = _nisqa(options.weights_path("nisqa", NISQA_WHAT), options.device)
    signals = at_rate(estimates, srs, feats.sr)
    rates = [feats.sr or int(r) for r in srs]
    return np.asarray(predict_mos(model, feats, signals, rates, options.device), dtype=np.float64)


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
                                           packages=("torch",)),
                 check=weights_check("utmos", UTMOS_WHAT))
def utmos(estimates: Sequence[np.ndarray], references: Sequence[np.ndarray | None], srs: np.ndarray,
          pool: Executor | None, options: MetricOptions = DEFAULT_OPTIONS) -> np.ndarray:
    """UTMOS22 strong (1..5), as the official script calls SpeechMOS's ``utmos22_strong``."""
    import torch

    model = _utmos(options.weights_path("utmos", UTMOS_WHAT), options.device)
    with torch.inference_mode():
        return np.array([float(model(torch.from_numpy(np.asarray(x, np.float32))[None].to(options.device), SR))
                         for x in estimates])


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
