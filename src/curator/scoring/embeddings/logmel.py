"""Default offline embedding: log-mel spectral-shape and modulation statistics (torch, no weights).

Per mel band, the time mean of the level-normalised log-mel (spectral shape: bandwidth, noise colour,
reverberation tilt) and its time standard deviation (how much the band fluctuates: speech vs stationary
noise). Fast (hundreds of times realtime per core), deterministic, and meaningful for acoustic-condition
diversity; the utterance's overall level is removed so cosine similarity ignores loudness.
"""

from __future__ import annotations

import numpy as np
import torch

from curator.scoring.embeddings import EMBEDDERS, EmbeddingBackend

WINDOW_SEC = 0.025  # analysis window (25 ms, the usual speech front-end)
HOP_SEC = 0.010  # frame hop (10 ms)
LOG_FLOOR = 1e-6  # added to mel power before the log (about -60 dB re full scale)
DTYPE = torch.float64
"""Computed in float64 and rounded to float32 once, at the end: float32 FFT/GEMM kernels differ in the last
bits between AVX-512 and AVX2 CPUs, and the float32 embedding is stored unrounded in the scores Parquet."""


@EMBEDDERS.register("logmel")
class LogMelStats(EmbeddingBackend):
    def setup(self) -> None:
        import librosa

        sr = self.options.sample_rate
        self.n_fft = round(WINDOW_SEC * sr)
        self.hop = round(HOP_SEC * sr)
        mel = librosa.filters.mel(sr=sr, n_fft=self.n_fft, n_mels=self.options.n_mels)
        self.mel = torch.from_numpy(mel).to(self.device, DTYPE)
        self.window = torch.hann_window(self.n_fft, device=self.device, dtype=DTYPE)

    @property
    def dim(self) -> int:
        return 2 * self.options.n_mels

    @torch.inference_mode()
    def embed(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        wav = torch.from_numpy(x).to(self.device, DTYPE)
        # center=False: every frame lies inside the signal, so padding (batch composition) cannot change a row
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        logmel = torch.log(self.mel @ spec.abs().square() + LOG_FLOOR)  # (batch, mels, frames)
        frames = torch.from_numpy(np.maximum(1 + (lengths - self.n_fft) // self.hop, 1)).to(self.device)
        mask = (torch.arange(logmel.shape[-1], device=self.device)[None, :] < frames[:, None]).to(logmel.dtype)
        count = mask.sum(-1)[:, None]
        mean = (logmel * mask[:, None, :]).sum(-1) / count
        var = (((logmel - mean[..., None]) ** 2) * mask[:, None, :]).sum(-1) / count
        shape = mean - mean.mean(-1, keepdim=True)
        return torch.cat([shape, var.sqrt()], dim=-1).float().cpu().numpy()
