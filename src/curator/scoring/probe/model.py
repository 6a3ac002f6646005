"""The probe: a small convolutional magnitude-mask estimator on a compressed STFT, and its per-utterance loss.

Deliberately small (tens of thousands of parameters, CPU-trainable in seconds): its job is to say which
utterances a limited model finds hard, not to enhance well.
"""

from __future__ import annotations

import torch
from torch import nn


class ProbeMask(nn.Module):
    """Conv1d stack over time with frequency bins as channels -> sigmoid magnitude mask."""

    def __init__(self, n_fft: int, hidden: int, layers: int, compress: float) -> None:
        super().__init__()
        self.n_fft, self.hop, self.compress = n_fft, n_fft // 2, compress
        bins = n_fft // 2 + 1
        dims = [bins] + [hidden] * layers
        blocks: list[nn.Module] = []
        for d_in, d_out in zip(dims[:-1], dims[1:], strict=True):
            blocks += [nn.Conv1d(d_in, d_out, kernel_size=3, padding=1), nn.ReLU()]
        blocks += [nn.Conv1d(hidden, bins, kernel_size=1), nn.Sigmoid()]
        self.net = nn.Sequential(*blocks)
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        """Compressed STFT magnitude ``|X|^compress`` of ``(batch, time)`` audio -> ``(batch, bins, frames)``."""
        spec = torch.stft(wav, self.n_fft, self.hop, window=self.window, center=False, return_complex=True)
        return spec.abs().clamp(min=1e-8) ** self.compress

    def frames(self, lengths: torch.Tensor) -> torch.Tensor:
        """Whole STFT frames inside each signal (center=False, so padding never enters a valid frame)."""
        return torch.clamp(1 + (lengths - self.n_fft) // self.hop, min=0)

    def forward(self, noisy_mag: torch.Tensor) -> torch.Tensor:
        return self.net(noisy_mag) * noisy_mag

    def utterance_loss(self, noisy: torch.Tensor, clean: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Mean absolute compressed-magnitude error over each utterance's valid frames -> ``(batch,)``."""
        noisy_mag, clean_mag = self.magnitude(noisy), self.magnitude(clean)
        err = (self(noisy_mag) - clean_mag).abs().mean(1)  # (batch, frames)
        valid = (torch.arange(err.shape[-1])[None, :] < self.frames(lengths)[:, None]).to(err.dtype)
        return (err * valid).sum(-1) / valid.sum(-1).clamp(min=1)
