"""Reference quality: speech-activity ratio of the clean target (Silero VAD, ONNX, shipped in silero-vad).

The share of 32 ms frames whose speech probability reaches ``threshold``: near 0 for a speech-free or
badly trimmed reference, near 1 for one without pauses. The sequence export runs a whole utterance per
onnxruntime call, so there is no per-frame Python loop.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curator.determinism import ort_session_options
from curator.scoring.base import SCORERS, AudioBatch, Scorer, ScoringError, float_columns

SR = 16000  # the sequence model's rate
FRAME = 512  # samples per frame at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous frame the model sees in front of each frame
STATE = (1, 1, 128)  # LSTM state shape
MODEL_FILE = "silero_vad_16k_sequence.onnx"


@dataclass
class VadOptions:
    """``score.options.vad``."""

    threshold: float = 0.5

    def __post_init__(self) -> None:
        from curator.config import check_range

        check_range("score.options.vad.threshold", self.threshold, lo=0.0, hi=1.0)


def frame_with_context(x: np.ndarray) -> np.ndarray:
    """``(frames, CONTEXT + FRAME)``: each zero-padded 512-sample frame preceded by the last 64 samples before it."""
    n = -(-len(x) // FRAME)
    frames = np.zeros((n, FRAME), dtype=np.float32)
    frames.reshape(-1)[: len(x)] = x
    context = np.zeros((n, CONTEXT), dtype=np.float32)
    context[1:] = frames[:-1, -CONTEXT:]
    return np.concatenate([context, frames], axis=1)


@SCORERS.register("vad")
class VadScorer(Scorer):
    name = "vad"
    outputs = ("ref_speech_ratio",)
    Options = VadOptions

    def setup(self) -> None:
        import onnxruntime as ort

        try:
            import silero_vad
        except ImportError as exc:
            raise ScoringError("the vad scorer needs the 'silero-vad' package (pip install silero-vad)") from exc
        path = Path(silero_vad.__file__).parent / "data" / MODEL_FILE
        if not path.is_file():
            raise ScoringError(f"Silero VAD model '{path}' is missing: reinstall silero-vad (>= 6.2)")
        so = ort_session_options(self.threads)  # the same kernels on every CPU (see curator.determinism)
        so.log_severity_level = 3  # the export carries unused initialisers onnxruntime would warn about
        self.session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    def columns(self) -> dict[str, pa.DataType]:
        return float_columns(self.outputs)

    def speech_probs(self, x: np.ndarray) -> np.ndarray:
        """Per-frame speech probability of one 16 kHz signal (one onnxruntime call)."""
        zeros = np.zeros(STATE, dtype=np.float32)
        (probs,) = self.session.run(["speech_probs"], {"input": frame_with_context(x), "h": zeros, "c": zeros})
        return probs

    def score_batch(self, batch: AudioBatch) -> dict[str, np.ndarray]:
        ratios = [float(np.mean(self.speech_probs(x) >= self.options.threshold))
                  for x in batch.signals("clean", SR)]
        return {"ref_speech_ratio": np.array(ratios, dtype=np.float64)}

    def settings(self) -> dict[str, Any]:
        return {"options": dataclasses.asdict(self.options), "model": MODEL_FILE}
