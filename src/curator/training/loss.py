"""The URGENT baseline's training loss: multi-resolution L1 on STFT magnitudes plus a time-domain L1 term.

``loss = time_weight * L1(time) + (1 - time_weight) * mean_r L1(|STFT_r|)`` over windows ``r`` (hop = window/2),
after optionally normalising both signals by the target's standard deviation and rescaling the estimate to
the target (scale invariance).

The defaults are the official recipe's (ESPnet ``MultiResL1SpecLoss`` as the baseline configures it):
rectangular STFT windows (``window: rect``) and L1 terms *summed* over samples / time-frequency bins, then
averaged over the batch (``reduction: sum``). This project's variant stays available: ``window: hann``
(less spectral leakage in the magnitude terms) and ``reduction: mean`` (a loss whose size does not grow with
crop length and sampling rate, so one learning rate and clip threshold suit every rate).

The official loss divides each signal by its own standard deviation; here both are divided by the target's.
Under scale invariance (the official setting) the two are the same loss, since the estimate is rescaled to
the target afterwards. A speech-free example has an all-zero target, for which scale invariance and variance
normalisation are undefined (the official loss divides by zero there; here they would make every estimate
free); such rows keep the plain L1, so the model is pushed to output silence.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn


class MultiResL1SpecLoss(nn.Module):
    """Scalar loss for (batch, time) estimate/target pairs; see the module docstring."""

    def __init__(self, windows: Sequence[int], time_weight: float, scale_invariant: bool = True,
                 normalize_variance: bool = True, eps: float = 1e-6, window: Literal["rect", "hann"] = "rect",
                 reduction: Literal["sum", "mean"] = "sum") -> None:
        super().__init__()
        if window not in ("rect", "hann") or reduction not in ("sum", "mean"):
            raise ValueError(f"loss: window must be rect|hann and reduction sum|mean, got {window!r}, {reduction!r}")
        self.windows = [int(w) for w in windows]
        self.time_weight = float(time_weight)
        self.scale_invariant = scale_invariant
        self.normalize_variance = normalize_variance
        self.eps = eps
        self.reduction = reduction
        for w in self.windows:
            win = torch.hann_window(w) if window == "hann" else torch.ones(w)
            self.register_buffer(f"window_{w}", win, persistent=False)

    def _reduce(self, err: torch.Tensor) -> torch.Tensor:
        """Per-example sum (or mean) of ``err`` over all but the batch axis, averaged over the batch."""
        per_example = err.flatten(1)
        return (per_example.sum(1) if self.reduction == "sum" else per_example.mean(1)).mean()

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
        time_loss = self._reduce((estimate - target).abs())
        spec_loss = torch.stack([self._mag_l1(estimate, target, w) for w in self.windows]).mean()
        return self.time_weight * time_loss + (1.0 - self.time_weight) * spec_loss

    def _mag_l1(self, estimate: torch.Tensor, target: torch.Tensor, win: int) -> torch.Tensor:
        window = getattr(self, f"window_{win}")
        both = torch.stft(torch.cat([estimate, target]), win, win // 2, window=window, center=True,
                          pad_mode="reflect", return_complex=True).abs()  # torch's default, as the official
        est_mag, tgt_mag = both.chunk(2)
        return self._reduce((est_mag - tgt_mag).abs())
