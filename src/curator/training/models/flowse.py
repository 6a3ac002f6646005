"""FlowSE: flow-matching speech enhancement on a BSRNN backbone, as the URGENT 2026 baseline configures it.

Works on compressed complex STFTs ``S(x) = factor * |X|^exponent * exp(i angle X)`` (STFT 1536 / 384 samples
at 48 kHz, i.e. 32 ms / 8 ms, scaled down with the rate as ``n_fft * sr // max_sr``). With clean ``x0`` and
noisy ``y`` spectra the probability path is ``x_t = (1 - t) x0 + t y + sigma_t z``, ``sigma_t = (1 - t)
sigma_min + t sigma_max``, ``z`` complex standard normal, ``t`` uniform in ``(t_eps, 1]``; the network
``v(x_t, t, y)`` regresses the conditional vector field ``(y - x0) + (sigma_max - sigma_min) z`` with the loss
``mean_batch 0.5 * sum |v - target|^2`` (:meth:`FlowSE.training_loss`, used by the trainer instead of the
regression loss). Enhancement (:meth:`FlowSE.forward`) starts at ``y + sigma_max z`` and takes ``sampler_steps``
Euler steps from ``t = 1`` to ``t_eps`` and a last one to 0; ``z`` comes from a generator seeded with
``sampler_seed``, so the same input gives the same output. The trainer keeps an exponential moving average of
the weights (``ema_decay``, with the usual warm-up ``min(decay, (1 + n) / (10 + n))``); validation and
``best.ckpt`` use the averaged weights.

Backbone (official ``bsrnn_flowse``): the state ``x_t`` and the condition ``y`` each go through their own band
split (769 bins at 48 kHz in 48 bands: 125 Hz to 3375 Hz, 312.5 Hz to 6.5 kHz, 1562.5 Hz to 22.125 kHz, one to
24 kHz), are concatenated and projected back to ``num_channels``; each of ``num_layers`` layers adds a Gaussian
Fourier embedding of ``t`` (fixed random frequencies) after the time block's norm; two band heads (norm, linear,
tanh to ``decoder_channels`` per bin) followed by a 5x5 convolution and a GLU give a complex mask ``M`` and
residual ``R``, and ``v = -(M x_t + R)``. The band splits' and heads' norms floor the variance at
``band_norm_eps`` (official 1e-8), the RNN blocks' at ``eps`` (1e-5). Defaults are the official size (384
channels, 6 layers); ``benchmarks/check_flowse_official.py`` compares this model with the official one, weight for
weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from curator.config import ConfigError, check_range
from curator.training.models import register_model
from curator.training.models.bsrnn import BandHead, BandSplit, NormKind, RNNStack, band_bins, stft_pad_mode


def _default_layout() -> list[list[float]]:
    # the official 769-bin layout: [5] + [4]*26 + [10]*10 + [50]*10 + [60] bins of 31.25 Hz
    return [[3375.0, 125.0], [6500.0, 312.5], [22125.0, 1562.5], [24000.0, 1875.0]]


@dataclass
class FlowSEOptions:
    """FlowSE hyper-parameters; the defaults are the official ``conf/models/BSRNN_flowse.yaml``."""

    num_channels: int = 384
    num_layers: int = 6
    rnn_hidden_factor: int = 2
    decoder_channels: int = 16
    n_fft: int = 1536
    hop_length: int = 384
    max_sr: int = 48000
    band_layout: list[list[float]] = field(default_factory=_default_layout)
    spec_abs_exponent: float = 0.667
    spec_factor: float = 0.065
    sigma_min: float = 0.05
    sigma_max: float = 0.5
    t_eps: float = 0.03
    sampler_steps: int = 15
    sampler_seed: int = 0
    ema_decay: float | None = 0.999
    norm: NormKind = "group"
    stft_pad_mode: Literal["reflect", "constant"] = "reflect"
    eps: float = 1e-5
    band_norm_eps: float = 1e-8

    def __post_init__(self) -> None:
        where = "train.model.flowse"  # where these options are written in params.yaml
        for key in ("num_channels", "num_layers", "rnn_hidden_factor", "decoder_channels", "n_fft", "hop_length",
                    "max_sr", "sampler_steps"):
            check_range(f"{where}.{key}", getattr(self, key), lo=1)
        if self.num_channels % 2:
            raise ConfigError(f"'{where}.num_channels' = {self.num_channels} must be even (time embedding sin/cos)")
        check_range(f"{where}.hop_length", self.hop_length, hi=self.n_fft)
        check_range(f"{where}.spec_abs_exponent", self.spec_abs_exponent, lo=0.0, lo_open=True)
        check_range(f"{where}.spec_factor", self.spec_factor, lo=0.0, lo_open=True)
        check_range(f"{where}.sigma_min", self.sigma_min, lo=0.0)
        check_range(f"{where}.sigma_max", self.sigma_max, lo=self.sigma_min, lo_open=True)
        check_range(f"{where}.t_eps", self.t_eps, lo=0.0, hi=1.0, lo_open=True)
        check_range(f"{where}.ema_decay", self.ema_decay, lo=0.0, hi=1.0)
        if self.t_eps == 1.0 or self.ema_decay == 1.0:
            raise ConfigError(f"'{where}.t_eps' and '{where}.ema_decay' must be < 1")
        check_range(f"{where}.eps", self.eps, lo=0.0, lo_open=True)
        check_range(f"{where}.band_norm_eps", self.band_norm_eps, lo=0.0, lo_open=True)
        band_bins(self.band_layout, self.n_fft / self.max_sr, self.max_sr, where)  # ConfigError on a bad layout


@register_model("flowse")
class FlowSE(nn.Module):
    """Flow matching on a BSRNN backbone: ``forward(noisy (B, T), sr) -> enhanced (B, T)`` runs the sampler."""

    Options = FlowSEOptions

    def __init__(self, opts: FlowSEOptions) -> None:
        super().__init__()
        self.opts = opts
        self.ema_decay = opts.ema_decay  # read by the trainer (curator.training.module)
        starts, widths = band_bins(opts.band_layout, opts.n_fft / opts.max_sr, opts.max_sr)
        self.starts, self.widths = starts, widths
        self.n_bins = starts[-1] + widths[-1]
        c, k = opts.num_channels, opts.decoder_channels
        band_eps = opts.band_norm_eps  # the band split's and heads' norms (official 1e-8); the RNN blocks': eps
        self.split_x = BandSplit(starts, widths, c, opts.norm, band_eps)
        self.split_y = BandSplit(starts, widths, c, opts.norm, band_eps)
        self.condition = nn.Linear(2 * c, c)
        # Gaussian Fourier features of t, one fixed random set per layer (saved with the weights)
        self.register_buffer("t_freqs", torch.randn(opts.num_layers, c // 2))
        self.rnns = RNNStack(c, opts.rnn_hidden_factor * c, opts.num_layers, opts.norm, opts.eps)
        self.mask = BandHead(starts, widths, c, None, k, opts.norm, band_eps)
        self.residual = BandHead(starts, widths, c, None, k, opts.norm, band_eps)
        self.mask_conv = nn.Conv2d(k, 4, 5, padding=2)
        self.residual_conv = nn.Conv2d(k, 4, 5, padding=2)

    # ------------------------------------------------------------------ STFT domain

    def stft_params(self, sr: int) -> tuple[int, int]:
        """(n_fft, hop) at ``sr``: the max-rate sizes scaled by ``sr / max_sr`` and rounded down (official)."""
        n_fft, hop = self.opts.n_fft * sr // self.opts.max_sr, self.opts.hop_length * sr // self.opts.max_sr
        if sr > self.opts.max_sr or hop < 1:
            raise ValueError(f"FlowSE cannot run at {sr} Hz: the rate must be <= max_sr ({self.opts.max_sr}) and "
                             f"give a hop of at least one sample")
        return n_fft, hop

    def encode(self, wav: torch.Tensor, sr: int) -> torch.Tensor:
        """(B, T) waveform -> (B, F, frames) compressed complex spectrum."""
        n_fft, hop = self.stft_params(sr)
        window = torch.hann_window(n_fft, device=wav.device, dtype=wav.dtype)
        spec = torch.stft(wav, n_fft, hop, window=window, center=True, return_complex=True,
                          pad_mode=stft_pad_mode(self.opts.stft_pad_mode, wav.shape[-1], n_fft))
        return torch.polar(spec.abs().pow(self.opts.spec_abs_exponent), spec.angle()) * self.opts.spec_factor

    def decode(self, spec: torch.Tensor, sr: int, length: int) -> torch.Tensor:
        """Inverse of :meth:`encode` (to ``length`` samples)."""
        n_fft, hop = self.stft_params(sr)
        spec = spec / self.opts.spec_factor
        spec = torch.polar(spec.abs().pow(1.0 / self.opts.spec_abs_exponent), spec.angle())
        window = torch.hann_window(n_fft, device=spec.device, dtype=spec.real.dtype)
        return torch.istft(spec, n_fft, hop, window=window, center=True, length=length)

    # ------------------------------------------------------------------ network

    def _head(self, head: BandHead, conv: nn.Conv2d, z: torch.Tensor, n_active: int, n_freq: int) -> torch.Tensor:
        f_active = self.starts[n_active - 1] + self.widths[n_active - 1]
        h = head(z, n_active)[:, :, :f_active].permute(0, 3, 2, 1)  # (B, k, F', T)
        h = nn.functional.glu(conv(h), dim=1)[:, :, :n_freq].float()  # (B, 2, F, T); float32 under bf16 autocast
        return torch.complex(h[:, 0], h[:, 1])  # (there is no bf16 complex type)

    def vector_field(self, xt: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The learned field ``v(x_t, t, y)`` for (B, F, frames) complex spectra and times ``t`` (B,)."""
        n_freq = y.shape[1]
        n_active = self.split_x.n_active(n_freq)
        pad = (0, 0, 0, 0, 0, self.n_bins - n_freq)
        zx = self.split_x(nn.functional.pad(torch.view_as_real(xt), pad), n_active)
        zy = self.split_y(nn.functional.pad(torch.view_as_real(y), pad), n_active)
        z = self.condition(torch.cat([zx, zy], dim=-1))  # (B, T, N, C)
        angles = 2 * math.pi * t[None, :, None] * self.t_freqs[:, None, :]  # (L, B, C/2)
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)[:, :, None, None, :]  # (L, B, 1, 1, C)
        z = self.rnns(z, list(emb))
        mask = self._head(self.mask, self.mask_conv, z, n_active, n_freq)
        residual = self._head(self.residual, self.residual_conv, z, n_active, n_freq)
        return -(mask * xt + residual)

    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        return (1 - t) * self.opts.sigma_min + t * self.opts.sigma_max

    # ------------------------------------------------------------------ training and sampling

    def training_loss(self, noisy: torch.Tensor, clean: torch.Tensor, sr: int,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """Conditional flow-matching loss of one batch (``generator``: draws of ``t`` and ``z``)."""
        y, x0 = self.encode(noisy, sr), self.encode(clean, sr)
        t_eps = self.opts.t_eps
        t = (1 - torch.rand(y.shape[0], generator=generator, device=y.device, dtype=noisy.dtype)) * (1 - t_eps) + t_eps
        z = torch.randn(y.shape, generator=generator, device=y.device, dtype=y.dtype)
        tt = t[:, None, None]
        xt = (1 - tt) * x0 + tt * y + self.sigma(tt) * z
        target = (y - x0) + (self.opts.sigma_max - self.opts.sigma_min) * z
        err = self.vector_field(xt, t, y) - target
        return 0.5 * (err.real.square() + err.imag.square()).flatten(1).sum(1).mean()

    @torch.no_grad()
    def sample(self, y: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
        """Euler integration of the learned flow from ``y + sigma_max z`` (t = 1) down to t = 0. ``z`` is drawn on
        the generator's device and moved to ``y``'s, so a CPU generator gives the same start on every device."""
        z = torch.randn(y.shape, generator=generator, device=generator.device, dtype=y.dtype)
        x = y + self.opts.sigma_max * z.to(y.device)
        times = torch.linspace(1.0, self.opts.t_eps, steps, device=y.device, dtype=y.real.dtype)
        for i in range(steps):
            step = times[i] - times[i + 1] if i + 1 < steps else times[-1]
            x = x - step * self.vector_field(x, times[i].expand(y.shape[0]), y)
        return x

    def forward(self, noisy: torch.Tensor, sr: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.opts.sampler_seed)  # on the CPU: the same draw on any device
        y = self.encode(noisy, sr)
        return self.decode(self.sample(y, self.opts.sampler_steps, generator), sr, noisy.shape[-1])
