"""Reference quality: DNSMOS P.835 SIG/BAK/OVRL of the clean target (the ONNX model shipped in speechmos).

Each utterance is cut into 9.01 s windows with a 1 s hop (shorter ones are doubled until they fill one),
every window is scored and the calibrated scores are averaged, as the official DNSMOS script does
(``max_windows: null``); ``max_windows`` caps the windows per utterance for speed (~0.4 s per window per
CPU core). ``mos_dns`` (the spec's column) is OVRL.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curator.determinism import ort_session_options
from curator.scoring.base import SCORERS, AudioBatch, Scorer, ScoringError, float_columns

log = logging.getLogger(__name__)
CUDA_PROVIDER = "CUDAExecutionProvider"


def onnx_providers(device: str) -> list[str]:
    """ONNX Runtime providers for DNSMOS on ``device``: CUDA first when asked for and installed. A ``cuda``
    device whose onnxruntime has no CUDA provider (PyPI's ``onnxruntime`` is the CPU build) runs on the CPU
    and says so once, since DNSMOS is most of the scoring time."""
    import onnxruntime as ort

    if device != "cuda":
        return ["CPUExecutionProvider"]
    if CUDA_PROVIDER in ort.get_available_providers():
        return [CUDA_PROVIDER, "CPUExecutionProvider"]
    _warn_cpu_fallback(tuple(ort.get_available_providers()))
    return ["CPUExecutionProvider"]


@functools.cache
def _warn_cpu_fallback(available: tuple[str, ...]) -> None:
    log.warning("DNSMOS runs on the CPU although the device is cuda: this onnxruntime offers %s, no %s. "
                "Install onnxruntime-gpu (matching your CUDA) in place of onnxruntime to run it on the GPU",
                ", ".join(available), CUDA_PROVIDER)

SR = 16000  # DNSMOS runs on 16 kHz audio only
WINDOW = 144160  # 9.01 s: the model's fixed input length
HOP = SR  # 1 s between windows
MAX_STACK = 64  # windows per onnxruntime run when they are stacked (GPU)
# third-order calibration of the raw SIG, BAK, OVRL outputs (non-personalised model; P.835 scale)
CALIBRATION = {
    False: ([-0.08397278, 1.22083953, 0.0052439], [-0.13166888, 1.60915514, -0.39604546],
            [-0.06766283, 1.11546468, 0.04602535]),
    True: ([-0.01019296, 0.02751166, 1.19576786, -0.24348726], [-0.04976499, 0.44276479, -0.1644611, 0.96883132],
           [-0.00533021, 0.005101, 1.18058466, -0.11236046]),
}


@dataclass
class DnsmosOptions:
    """``score.options.dnsmos``."""

    personalized: bool = False
    model_path: str | None = None
    max_windows: int | None = 1

    def __post_init__(self) -> None:
        from curator.config import check_range

        check_range("score.options.dnsmos.max_windows", self.max_windows, lo=1)

    def resolved_model(self) -> Path:
        """The ONNX file: ``model_path`` or the one inside the installed speechmos package."""
        if self.model_path:
            return Path(self.model_path)
        try:
            import speechmos
        except ImportError as exc:
            raise ScoringError("the dnsmos scorer needs the 'speechmos' package (pip install speechmos "
                               "onnxruntime librosa), or score.options.dnsmos.model_path set to "
                               "sig_bak_ovr.onnx") from exc
        folder = "pdnsmos_models" if self.personalized else "dnsmos_models"
        return Path(speechmos.__file__).parent / folder / "sig_bak_ovr.onnx"


def windows(x: np.ndarray, max_windows: int | None = None) -> np.ndarray:
    """The ``(n, WINDOW)`` analysis windows of one 16 kHz signal, as the official script cuts them.

    A short signal is doubled until it fills a window. ``max_windows`` keeps that many evenly spaced windows
    (on short clips the windows are shifted repeats of the same audio, so the mean barely moves).
    """
    while len(x) < WINDOW:
        x = np.concatenate([x, x])
    n = int(np.floor(len(x) / SR) - WINDOW / SR) + 1  # whole seconds first, as the official script counts
    starts = np.arange(n) * HOP
    # the official script computes window ends in floating point and drops the windows that come out short
    ends = ((np.arange(n) + WINDOW / SR) * SR).astype(np.int64)
    starts = starts[np.minimum(ends, len(x)) - starts >= WINDOW]
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[np.round(np.linspace(0, len(starts) - 1, max_windows)).astype(np.int64)]
    return np.lib.stride_tricks.sliding_window_view(x, WINDOW)[starts]


@SCORERS.register("dnsmos")
class DnsmosScorer(Scorer):
    name = "dnsmos"
    outputs = ("ref_dnsmos_sig", "ref_dnsmos_bak", "ref_dnsmos_ovrl", "mos_dns")
    gpu_capable = True
    Options = DnsmosOptions

    def setup(self) -> None:
        import onnxruntime as ort

        path = self.options.resolved_model()
        if not path.is_file():
            raise ScoringError(f"DNSMOS model '{path}' not found: install speechmos or set "
                               f"score.options.dnsmos.model_path to a sig_bak_ovr.onnx file")
        # basic graph optimisations only: the NCHWc layout of ORT_ENABLE_ALL blocks channels by the CPU's
        # vector width, and the scores differed by up to 6e-7 between AVX-512 and AVX2 CPUs
        so = ort_session_options(self.threads)
        self.session = ort.InferenceSession(str(path), so, providers=onnx_providers(self.device))
        self.input_name = self.session.get_inputs()[0].name
        self.calibration = [np.poly1d(c) for c in CALIBRATION[self.options.personalized]]
        # on a GPU the per-call cost dominates: the batch's windows go in stacked runs (on CPU a stacked run gives
        # the same bits per window, but is slower per window, so CPU runs keep one window per call)
        self.stacked = CUDA_PROVIDER in self.session.get_providers()

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def raw_scores(self, cut: list[np.ndarray]) -> list[np.ndarray]:
        """Uncalibrated (SIG, BAK, OVRL) of every window, for each utterance's ``(n, WINDOW)`` windows."""
        if not self.stacked:
            # one window per call: on CPU, onnxruntime is slower per window on stacked windows (same numbers)
            return [np.stack([self.session.run(None, {self.input_name: w[None].astype(np.float32)})[0][0] for w in c])
                    for c in cut]
        flat = [w for c in cut for w in c]
        raw = np.concatenate([self.session.run(None, {self.input_name: np.stack(flat[k:k + MAX_STACK]).astype(np.float32)})[0]
                              for k in range(0, len(flat), MAX_STACK)])
        bounds = np.cumsum([0, *(len(c) for c in cut)])
        return [raw[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        out = np.full((len(batch), 3), np.nan)
        signals = batch.signals("clean", SR)
        rows = [i for i in range(len(batch)) if not batch.speech_free[i]]  # a silent target's quality is undefined
        raw = self.raw_scores([windows(signals[i], self.options.max_windows) for i in rows])
        for i, r in zip(rows, raw, strict=True):
            out[i] = [np.mean(p(r[:, k])) for k, p in enumerate(self.calibration)]
        return {"ref_dnsmos_sig": out[:, 0], "ref_dnsmos_bak": out[:, 1], "ref_dnsmos_ovrl": out[:, 2],
                "mos_dns": out[:, 2]}

    def settings(self) -> dict[str, Any]:
        return {"options": dataclasses.asdict(self.options), "model": self.options.resolved_model().name}
