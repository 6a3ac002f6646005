"""Band-split RNN (BSRNN, Luo & Yu 2023) in the sampling-frequency-independent form of the URGENT baseline.

The STFT window and hop are fixed in *seconds* (20 ms / 10 ms), so every sampling rate gets the same 50 Hz bin
spacing and the bins of a lower rate are a prefix of the 48 kHz bins. The band layout is defined once in Hz up
to ``max_sr / 2``; an input only uses the bands below its own Nyquist frequency, so one set of weights serves
8 kHz to 48 kHz. Each layer runs a bidirectional LSTM along time (per band) and then along bands (per frame);
a per-band MLP estimates a complex mask that multiplies the noisy spectrum.

Band-wise layers are vectorised: bands of equal width share one batched ``einsum`` with stacked per-band
weights instead of a Python loop over ~34 bands.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from curator.config import ConfigError, check_range
from curator.training.models import register_model

_FREQ_TOL = 1e-6  # tolerance when checking that a rate gives an integer number of window/hop samples


def _default_layout() -> list[list[float]]:
    # [upper edge Hz, band width Hz]: 200 Hz bands to 4 kHz, 500 Hz to 7 kHz, 2 kHz to 21 kHz, one to 24 kHz
    return [[4000.0, 200.0], [7000.0, 500.0], [21000.0, 2000.0], [24000.0, 3000.0]]


@dataclass
class BSRNNOptions:
    """BSRNN hyper-parameters; the defaults are the official baseline's (196 channels, 6 layers)."""

    num_channels: int = 196
    num_layers: int = 6
    rnn_hidden_factor: int = 2
    mask_hidden_factor: int = 4
    win_seconds: float = 0.02
    hop_seconds: float = 0.01
    max_sr: int = 48000
    band_layout: list[list[float]] = field(default_factory=_default_layout)
    eps: float = 1e-5

    def __post_init__(self) -> None:
        where = "train.model.options"
        for key in ("num_channels", "num_layers", "rnn_hidden_factor", "mask_hidden_factor", "max_sr"):
            check_range(f"{where}.{key}", getattr(self, key), lo=1)
        check_range(f"{where}.win_seconds", self.win_seconds, lo=0.0, lo_open=True)
        check_range(f"{where}.hop_seconds", self.hop_seconds, lo=0.0, hi=self.win_seconds, lo_open=True)
        band_bins(self.band_layout, self.win_seconds, self.max_sr)  # raises ConfigError on a bad layout


def band_bins(layout: list[list[float]], win_seconds: float, max_sr: int) -> tuple[list[int], list[int]]:
    """(start bin, width in bins) of every band of ``layout`` at ``max_sr``; the first band holds DC."""
    bin_hz = 1.0 / win_seconds
    n_fft = max_sr * win_seconds
    if abs(n_fft - round(n_fft)) > _FREQ_TOL:
        raise ConfigError(f"'train.model.options': max_sr * win_seconds = {n_fft} must be an integer")
    n_bins = int(round(n_fft)) // 2 + 1
    ends: list[int] = []
    lower = 0.0
    for i, pair in enumerate(layout):
        if len(pair) != 2:
            raise ConfigError(f"'train.model.options.band_layout[{i}]' must be [upper_hz, width_hz], got {pair}")
        upper, width = float(pair[0]), float(pair[1])
        steps = (upper - lower) / width if width > 0 else -1.0
        if upper <= lower or steps < 1 or abs(steps - round(steps)) > _FREQ_TOL or width % bin_hz > _FREQ_TOL:
            raise ConfigError(
                f"'train.model.options.band_layout[{i}]' = {pair}: upper edges must increase, "
                f"(upper - previous upper) must be a multiple of width, and width a multiple of {bin_hz:g} Hz"
            )
        ends += [int(round((lower + width * (k + 1)) / bin_hz)) for k in range(int(round(steps)))]
        lower = upper
    if not ends or ends[-1] != n_bins - 1:
        raise ConfigError(
            f"'train.model.options.band_layout' must end at max_sr / 2 = {max_sr / 2:g} Hz "
            f"(it ends at {lower:g} Hz)"
        )
    starts = [0] + [e + 1 for e in ends[:-1]]
    return starts, [e - s + 1 for s, e in zip(starts, ends, strict=True)]


class _BandLinear(nn.Module):
    """``n`` independent linear layers applied at once: (..., n_active, d_in) -> (..., n_active, d_out)."""

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...ni,nio->...no", x, self.weight[idx]) + self.bias[idx]


class _BandNorm(nn.Module):
    """Layer norm over the last dim with a separate affine transform per band."""

    def __init__(self, n: int, dim: int, eps: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n, dim))
        self.beta = nn.Parameter(torch.zeros(n, dim))
        self.eps = eps

    def forward(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        x = nn.functional.layer_norm(x, x.shape[-1:], eps=self.eps)
        return x * self.gamma[idx] + self.beta[idx]


class _WidthGroup(nn.Module):
    """All bands of one width: band-split encoder and mask-estimation MLP, both per band."""

    def __init__(self, bands: list[int], width: int, opts: BSRNNOptions) -> None:
        super().__init__()
        c, n = opts.num_channels, len(bands)
        self.width = width
        self.register_buffer("bands", torch.tensor(bands, dtype=torch.long), persistent=False)
        self.in_norm = _BandNorm(n, 2 * width, opts.eps)
        self.in_proj = _BandLinear(n, 2 * width, c)
        self.out_norm = _BandNorm(n, c, opts.eps)
        self.out_hidden = _BandLinear(n, c, opts.mask_hidden_factor * c)
        self.out_proj = _BandLinear(n, opts.mask_hidden_factor * c, 4 * width)  # (re, im) x GLU halves

    def active(self, n_active: int) -> torch.Tensor:
        """Positions (within this group) of the bands the current sampling rate uses."""
        return torch.nonzero(self.bands < n_active).flatten()

    def encode(self, spec: torch.Tensor, bins: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(B, F_full, T, 2) real spectrum -> (B, T, n, C) band features."""
        x = spec[:, bins[idx]]  # (B, n, w, T, 2)
        b, n, w, t, _ = x.shape
        x = x.permute(0, 3, 1, 2, 4).reshape(b, t, n, 2 * w)
        return self.in_proj(self.in_norm(x, idx), idx)

    def decode(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(B, T, n, C) features -> (B, n, w, T) complex mask."""
        h = torch.tanh(self.out_hidden(self.out_norm(z, idx), idx))
        m = nn.functional.glu(self.out_proj(h, idx), dim=-1)  # (B, T, n, 2w)
        b, t, n, _ = m.shape
        m = m.reshape(b, t, n, self.width, 2).permute(0, 2, 3, 1, 4).contiguous()
        return torch.view_as_complex(m)


class _RNNBlock(nn.Module):
    """GroupNorm -> BLSTM -> linear, residual; runs along the middle axis of (sequences, length, C)."""

    def __init__(self, channels: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels, eps=eps)
        self.rnn = nn.LSTM(channels, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(x.transpose(1, 2)).transpose(1, 2)
        y, _ = self.rnn(y)
        return x + self.proj(y)


@register_model("bsrnn")
class BSRNN(nn.Module):
    """Sampling-frequency-independent BSRNN: ``forward(noisy (B, T), sr) -> enhanced (B, T)``."""

    Options = BSRNNOptions

    def __init__(self, opts: BSRNNOptions) -> None:
        super().__init__()
        self.opts = opts
        starts, widths = band_bins(opts.band_layout, opts.win_seconds, opts.max_sr)
        self.starts = starts
        self.n_bins = starts[-1] + widths[-1]
        groups: dict[int, list[int]] = {}
        for band, width in enumerate(widths):
            groups.setdefault(width, []).append(band)
        self.groups = nn.ModuleList(_WidthGroup(bands, w, opts) for w, bands in groups.items())
        for g, bands in zip(self.groups, groups.values(), strict=True):
            bins = torch.tensor([[starts[b] + k for k in range(g.width)] for b in bands], dtype=torch.long)
            g.register_buffer("bins", bins, persistent=False)
        hidden = opts.rnn_hidden_factor * opts.num_channels
        self.time_rnns = nn.ModuleList(_RNNBlock(opts.num_channels, hidden, opts.eps) for _ in range(opts.num_layers))
        self.band_rnns = nn.ModuleList(_RNNBlock(opts.num_channels, hidden, opts.eps) for _ in range(opts.num_layers))

    def stft_params(self, sr: int) -> tuple[int, int]:
        """(n_fft, hop) in samples at ``sr``; the window must be a whole number of samples."""
        n_fft = sr * self.opts.win_seconds
        if sr > self.opts.max_sr or abs(n_fft - round(n_fft)) > _FREQ_TOL:
            raise ValueError(
                f"BSRNN cannot run at {sr} Hz: the rate must be <= max_sr ({self.opts.max_sr}) and give a whole "
                f"number of samples per {self.opts.win_seconds * 1000:g} ms window"
            )
        return int(round(n_fft)), int(sr * self.opts.hop_seconds)

    def forward(self, noisy: torch.Tensor, sr: int) -> torch.Tensor:
        n_fft, hop = self.stft_params(sr)
        length = noisy.shape[-1]
        scale = noisy.square().mean(-1, keepdim=True).sqrt() + self.opts.eps
        window = torch.hann_window(n_fft, device=noisy.device, dtype=noisy.dtype)
        spec = torch.stft(noisy / scale, n_fft, hop, window=window, center=True, pad_mode="constant",
                          return_complex=True)  # (B, F, T)
        n_freq = spec.shape[1]
        n_active = bisect.bisect_left(self.starts, n_freq)  # bands starting below this rate's Nyquist
        padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, 0, 0, 0, self.n_bins - n_freq))

        active = [g.active(n_active) for g in self.groups]
        feats = [g.encode(padded, g.bins, idx) for g, idx in zip(self.groups, active, strict=True) if len(idx)]
        order = torch.argsort(torch.cat([g.bands[idx] for g, idx in zip(self.groups, active, strict=True)]))
        z = torch.cat(feats, dim=2)[:, :, order]  # (B, T, N, C) in band order
        b, t, n, c = z.shape
        for time_rnn, band_rnn in zip(self.time_rnns, self.band_rnns, strict=True):
            z = time_rnn(z.transpose(1, 2).reshape(b * n, t, c)).reshape(b, n, t, c).transpose(1, 2)
            z = band_rnn(z.reshape(b * t, n, c)).reshape(b, t, n, c)

        mask = spec.new_zeros(b, self.n_bins, t)
        offset = 0
        inverse = torch.argsort(order)
        for g, idx in zip(self.groups, active, strict=True):
            if not len(idx):
                continue
            pos = inverse[offset:offset + len(idx)]
            offset += len(idx)
            m = g.decode(z[:, :, pos], idx)  # (B, n, w, T)
            mask[:, g.bins[idx].flatten()] = m.reshape(b, -1, t)
        enhanced = torch.istft(mask[:, :n_freq] * spec, n_fft, hop, window=window, center=True, length=length)
        return enhanced * scale
