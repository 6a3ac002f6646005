"""The URGENT baseline's training loss: multi-resolution L1 on STFT magnitudes plus a time-domain L1 term.

``loss = time_weight * L1(time) + (1 - time_weight) * mean_r L1(|STFT_r|)`` over windows ``r`` (hop = window/2),
after optionally normalising both signals by the target's standard deviation and rescaling the estimate to
the target (scale invariance). A speech-free example has an all-zero target, for which scale invariance and
variance normalisation are undefined (they would make every estimate free); such rows keep the plain L1, so
the model is pushed to output silence.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MultiResL1SpecLoss(nn.Module):
    """Scalar loss for (batch, time) estimate/target pairs; see the module docstring."""

    def __init__(self, windows: Sequence[int], time_weight: float, scale_invariant: bool,
                 normalize_variance: bool, eps: float) -> None:
        super().__init__()
        self.windows = [int(w) for w in windows]
        self.time_weight = float(time_weight)
        self.scale_invariant = scale_invariant
        self.normalize_variance = normalize_variance
        self.eps = eps
        for w in self.windows:
            self.register_buffer(f"window_{w}", torch.hann_window(w), persistent=False)

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if estimate.shape != target.shape:
            raise ValueError(f"loss: estimate {tuple(estimate.shape)} and target {tuple(target.shape)} differ")
        has_speech = target.square().sum(-1, keepdim=True) > self.eps
        if self.normalize_variance:
            std = torch.where(has_speech, target.std(-1, keepdim=True), torch.ones_like(target[:, :1]))
            estimate, target = estimate / (std + self.eps), target / (std + self.eps)
        if self.scale_invariant:
            gain = (estimate * target).sum(-1, keepdim=True) / (estimate.square().sum(-1, keepdim=True) + self.eps)
            estimate = torch.where(has_speech, gain * estimate, estimate)
        time_loss = (estimate - target).abs().mean()
        spec_loss = torch.stack([self._mag_l1(estimate, target, w) for w in self.windows]).mean()
        return self.time_weight * time_loss + (1.0 - self.time_weight) * spec_loss

    def _mag_l1(self, estimate: torch.Tensor, target: torch.Tensor, win: int) -> torch.Tensor:
        window = getattr(self, f"window_{win}")
        both = torch.stft(torch.cat([estimate, target]), win, win // 2, window=window, center=True,
                          pad_mode="constant", return_complex=True).abs()
        est_mag, tgt_mag = both.chunk(2)
        return (est_mag - tgt_mag).abs().mean()
