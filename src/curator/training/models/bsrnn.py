"""Band-split RNN (BSRNN, Luo & Yu 2023) in the sampling-frequency-independent form of the URGENT baseline.

The STFT window and hop are fixed in *seconds* (20 ms / 10 ms), so every sampling rate gets the same 50 Hz bin
spacing and the bins of a lower rate are a prefix of the 48 kHz bins. The band layout is defined once in Hz up
to ``max_sr / 2``; an input only uses the bands below its own Nyquist frequency, so one set of weights serves
8 kHz to 48 kHz. Each layer runs a bidirectional LSTM along time (per band) and then along bands (per frame);
per-band MLPs estimate a complex mask ``M`` and a complex residual ``R``, and the output spectrum is
``M * X + R``.

The defaults are the official baseline's architecture (ESPnet ``BSRNNSeparator`` between 20 ms / 10 ms STFT
encoder and decoder, 196 channels x 6 layers: 37.8 M parameters): mask *and* residual branch, GroupNorm-style
normalisation over a whole utterance (band-split input per band over time and features, RNN blocks over
time, bands and channels, mask heads per band over time and channels), no input scaling, reflect-padded STFT.
The norms of the band split and the heads add 1e-8 to the variance (``band_norm_eps``, ESPnet's ``GroupNorm(...,
eps=1e-8)`` of ``espnet2.enh.layers.tcn``), those of the RNN blocks 1e-5 (``eps``, torch's default): a quiet band,
such as the empty top of upsampled narrow-band speech, is scaled up as in the official model.
This project's earlier variant stays available as named options: ``residual_mask: false`` (mask only),
``norm: frame`` (statistics per frame, or per band sequence / frame inside the RNN blocks, so a padded tail
or a loud segment elsewhere does not change a frame's features), ``input_rms_norm: true`` (divide the input
by its RMS and restore it at the output) and ``stft_pad_mode: constant``.

Band-wise layers are vectorised: bands of equal width share one batched ``einsum`` with stacked per-band
weights instead of a Python loop over ~34 bands. The bands a sampling rate uses are a prefix of every width
group, so the weights are sliced (views, no copy, no host-device sync), and when the groups are runs of
consecutive bands (every layout of ``[upper, width]`` runs with distinct widths, the defaults included) the
band split reads each group as a view of one time-major copy of the spectrum and the heads concatenate their
outputs in bin order, with no index gather or scatter. The building blocks (band split, RNN stack, band heads) are
shared with FlowSE (``curator.training.models.flowse``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from curator.config import ConfigError, check_range
from curator.training.models import register_model

_FREQ_TOL = 1e-6  # tolerance when checking that a rate gives an integer number of window/hop samples
NormKind = Literal["group", "frame"]


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
    band_norm_eps: float = 1e-8
    residual_mask: bool = True
    norm: NormKind = "group"
    input_rms_norm: bool = False
    stft_pad_mode: Literal["reflect", "constant"] = "reflect"

    def __post_init__(self) -> None:
        where = "train.model.options"
        for key in ("num_channels", "num_layers", "rnn_hidden_factor", "mask_hidden_factor", "max_sr"):
            check_range(f"{where}.{key}", getattr(self, key), lo=1)
        check_range(f"{where}.win_seconds", self.win_seconds, lo=0.0, lo_open=True)
        check_range(f"{where}.hop_seconds", self.hop_seconds, lo=0.0, hi=self.win_seconds, lo_open=True)
        check_range(f"{where}.eps", self.eps, lo=0.0, lo_open=True)
        check_range(f"{where}.band_norm_eps", self.band_norm_eps, lo=0.0, lo_open=True)
        band_bins(self.band_layout, self.win_seconds, self.max_sr)  # raises ConfigError on a bad layout


def band_bins(layout: list[list[float]], win_seconds: float, max_sr: int,
              where: str = "train.model.options") -> tuple[list[int], list[int]]:
    """(start bin, width in bins) of every band of ``layout`` at ``max_sr``; the first band holds DC.
    ``where`` names the params section in error messages."""
    bin_hz = 1.0 / win_seconds
    n_fft = max_sr * win_seconds
    if abs(n_fft - round(n_fft)) > _FREQ_TOL:
        raise ConfigError(f"'{where}': max_sr * win_seconds = {n_fft} must be an integer")
    n_bins = int(round(n_fft)) // 2 + 1
    ends: list[int] = []
    lower = 0.0
    for i, pair in enumerate(layout):
        if len(pair) != 2:
            raise ConfigError(f"'{where}.band_layout[{i}]' must be [upper_hz, width_hz], got {pair}")
        upper, width = float(pair[0]), float(pair[1])
        steps = (upper - lower) / width if width > 0 else -1.0
        ratio = width / bin_hz
        if upper <= lower or steps < 1 or abs(steps - round(steps)) > _FREQ_TOL or abs(ratio - round(ratio)) > _FREQ_TOL:
            raise ConfigError(
                f"'{where}.band_layout[{i}]' = {pair}: upper edges must increase, "
                f"(upper - previous upper) must be a multiple of width, and width a multiple of {bin_hz:g} Hz"
            )
        ends += [int(round((lower + width * (k + 1)) / bin_hz)) for k in range(int(round(steps)))]
        lower = upper
    if not ends or ends[-1] != n_bins - 1:
        raise ConfigError(
            f"'{where}.band_layout' must end at max_sr / 2 = {max_sr / 2:g} Hz "
            f"(it ends at {lower:g} Hz)"
        )
    starts = [0] + [e + 1 for e in ends[:-1]]
    return starts, [e - s + 1 for s, e in zip(starts, ends, strict=True)]


def stft_pad_mode(mode: str, length: int, n_fft: int) -> str:
    """``mode``, except constant padding for a signal too short to reflect (<= half a window)."""
    return mode if length > n_fft // 2 else "constant"


def _standardize(x: torch.Tensor, dims: Sequence[int], eps: float) -> torch.Tensor:
    """Zero mean, unit variance over ``dims`` (biased variance, as GroupNorm/LayerNorm)."""
    var, mean = torch.var_mean(x, dim=tuple(dims), correction=0, keepdim=True)
    return (x - mean) * torch.rsqrt(var + eps)


class _BandLinear(nn.Module):
    """``n`` independent linear layers applied at once: (..., n_active, d_in) -> (..., n_active, d_out)."""

    def __init__(self, n: int, d_in: int, d_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, d_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The first ``k`` layers (the active bands of a group) on ``x`` (..., k, d_in)."""
        return torch.einsum("...ni,nio->...no", x, self.weight[:k]) + self.bias[:k]


class _BandNorm(nn.Module):
    """Normalisation of (B, T, n, d) band features with a separate affine transform per band.

    ``group`` (official GroupNorm(1, d) per band): statistics over time and features of each band;
    ``frame``: statistics over the features of each frame (layer norm).
    """

    def __init__(self, n: int, dim: int, norm: NormKind, eps: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(n, dim))
        self.beta = nn.Parameter(torch.zeros(n, dim))
        self.dims = (1, 3) if norm == "group" else (3,)
        self.eps = eps

    def forward(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return _standardize(x, self.dims, self.eps) * self.gamma[:k] + self.beta[:k]


def width_groups(widths: Sequence[int]) -> dict[int, list[int]]:
    """Band indices grouped by band width, in order of first appearance."""
    groups: dict[int, list[int]] = {}
    for band, width in enumerate(widths):
        groups.setdefault(width, []).append(band)
    return groups


def consecutive_runs(groups: dict[int, list[int]]) -> bool:
    """Whether the width groups, in order, are runs of consecutive bands covering every band in order."""
    flat = [b for bands in groups.values() for b in bands]
    return flat == list(range(len(flat)))


class _Group(nn.Module):
    """Bookkeeping shared by band-wise layers: the bands of one width and their bins."""

    def __init__(self, bands: list[int], width: int, starts: Sequence[int]) -> None:
        super().__init__()
        self.width = width
        self.band_list = list(bands)  # ascending: the active bands of a rate are a prefix
        self.first_bin = starts[bands[0]]
        self.register_buffer("bands", torch.tensor(bands, dtype=torch.long), persistent=False)
        bins = torch.tensor([[starts[b] + k for k in range(width)] for b in bands], dtype=torch.long)
        self.register_buffer("bins", bins, persistent=False)

    def active(self, n_active: int) -> int:
        """How many of this group's bands (its first ones) the current sampling rate uses."""
        return bisect.bisect_left(self.band_list, n_active)


class _SplitGroup(_Group):
    def __init__(self, bands: list[int], width: int, starts: Sequence[int], channels: int, norm: NormKind,
                 eps: float) -> None:
        super().__init__(bands, width, starts)
        self.in_norm = _BandNorm(len(bands), 2 * width, norm, eps)
        self.in_proj = _BandLinear(len(bands), 2 * width, channels)


class BandSplit(nn.Module):
    """(B, F_full, T, 2) real spectrum -> (B, T, n_active, C) band features (per-band norm + linear)."""

    def __init__(self, starts: Sequence[int], widths: Sequence[int], channels: int, norm: NormKind,
                 eps: float) -> None:
        super().__init__()
        self.starts = list(starts)
        self.groups = nn.ModuleList(_SplitGroup(bands, w, starts, channels, norm, eps)
                                    for w, bands in width_groups(widths).items())
        self.runs = consecutive_runs(width_groups(widths))

    def n_active(self, n_freq: int) -> int:
        """Bands starting below this rate's Nyquist bin count (the last one may be partly zero-padded)."""
        return bisect.bisect_left(self.starts, n_freq)

    def forward(self, padded: torch.Tensor, n_active: int) -> torch.Tensor:
        if self.runs:
            return self._forward_runs(padded, n_active)
        feats, bands = [], []
        for g in self.groups:
            k = g.active(n_active)
            if not k:
                continue
            x = padded[:, g.bins[:k]]  # (B, n, w, T, 2)
            b, n, w, t, _ = x.shape
            x = x.permute(0, 3, 1, 2, 4).reshape(b, t, n, 2 * w)
            feats.append(g.in_proj(g.in_norm(x, k), k))
            bands.append(g.bands[:k])
        order = torch.argsort(torch.cat(bands))
        return torch.cat(feats, dim=2)[:, :, order]  # (B, T, N, C) in band order

    def _forward_runs(self, padded: torch.Tensor, n_active: int) -> torch.Tensor:
        """Groups that are runs of consecutive bands, in band order: one time-major copy of the active bins,
        each group a view of it, features concatenated in band order."""
        b, _, t, _ = padded.shape
        active = [(g, g.active(n_active)) for g in self.groups]
        active = [(g, k) for g, k in active if k]
        covered = active[-1][0].first_bin + active[-1][1] * active[-1][0].width
        x_all = padded[:, :covered].transpose(1, 2).reshape(b, t, 2 * covered)  # (B, T, F' * 2), bin-major
        feats = []
        for g, k in active:
            lo = 2 * g.first_bin
            x = x_all[:, :, lo:lo + 2 * k * g.width].view(b, t, k, 2 * g.width)
            feats.append(g.in_proj(g.in_norm(x, k), k))
        return feats[0] if len(feats) == 1 else torch.cat(feats, dim=2)  # (B, T, N, C)


class _HeadGroup(_Group):
    def __init__(self, bands: list[int], width: int, starts: Sequence[int], channels: int, hidden: int | None,
                 per_bin: int, norm: NormKind, eps: float) -> None:
        super().__init__(bands, width, starts)
        n = len(bands)
        self.out_norm = _BandNorm(n, channels, norm, eps)
        if hidden is None:  # norm -> linear -> tanh (FlowSE's gradient decoder)
            self.out_proj = _BandLinear(n, channels, per_bin * width)
        else:  # norm -> linear -> tanh -> linear -> GLU (the BSRNN mask estimator)
            self.out_hidden = _BandLinear(n, channels, hidden)
            self.out_proj = _BandLinear(n, hidden, 2 * per_bin * width)
        self.hidden = hidden

    def forward(self, z: torch.Tensor, k: int) -> torch.Tensor:
        h = self.out_norm(z, k)
        if self.hidden is None:
            return torch.tanh(self.out_proj(h, k))
        return nn.functional.glu(self.out_proj(torch.tanh(self.out_hidden(h, k)), k), dim=-1)


class BandHead(nn.Module):
    """(B, T, n_active, C) band features -> (B, T, F', per_bin) per-bin outputs of the bins of the active bands
    (``F'`` = the end of the last active band; with a layout of non-consecutive width groups, ``F_full`` with
    zeros above the active bands)."""

    def __init__(self, starts: Sequence[int], widths: Sequence[int], channels: int, hidden: int | None,
                 per_bin: int, norm: NormKind, eps: float) -> None:
        super().__init__()
        self.n_bins = starts[-1] + widths[-1]
        self.per_bin = per_bin
        self.groups = nn.ModuleList(_HeadGroup(bands, w, starts, channels, hidden, per_bin, norm, eps)
                                    for w, bands in width_groups(widths).items())
        self.runs = consecutive_runs(width_groups(widths))

    def forward(self, z: torch.Tensor, n_active: int) -> torch.Tensor:
        b, t, _, _ = z.shape
        if self.runs:  # groups in band order: slice the bands, concatenate the bins
            outs, first = [], 0
            for g in self.groups:
                k = g.active(n_active)
                if not k:
                    break
                outs.append(g(z[:, :, first:first + k], k).reshape(b, t, k * g.width, self.per_bin))
                first += k
            return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)
        out = z.new_zeros(b, t, self.n_bins, self.per_bin)
        for g in self.groups:
            k = g.active(n_active)
            if not k:
                continue
            y = g(z[:, :, g.bands[:k]], k)  # (B, T, n, w * per_bin)
            out[:, :, g.bins[:k].flatten()] = y.reshape(b, t, -1, self.per_bin)
        return out


class _RNNBlock(nn.Module):
    """Norm -> BLSTM -> linear, residual, along time (per band) or along bands (per frame) of (B, T, N, C).

    The norm is GroupNorm(1, C)-style (statistics over several axes, affine per channel): ``group`` (official)
    over time, bands and channels of each utterance; ``frame`` over each sequence the BLSTM reads (time and
    channels of a band, or bands and channels of a frame). Both run as one fused ``layer_norm`` over trailing
    axes.
    """

    def __init__(self, channels: int, hidden: int, along: Literal["time", "band"], norm: NormKind,
                 eps: float) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(1, channels, eps=eps)  # holds the per-channel affine weights
        self.rnn = nn.LSTM(channels, hidden, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden, channels)
        self.along = along
        self.per_utterance = norm == "group"

    def _norm(self, x: torch.Tensor, axes: int) -> torch.Tensor:
        y = nn.functional.layer_norm(x, x.shape[-axes:], eps=self.norm.eps)
        return y * self.norm.weight + self.norm.bias

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        b, t, n, c = z.shape
        if self.per_utterance and self.along == "time":
            # statistics over (T, N, C) are those over (N, T, C): normalise in band-major order, so the copy the
            # normalisation makes is already the BLSTM's (B * N, T, C) input
            y = self._norm(z.transpose(1, 2), 3)
            if cond is not None:
                y = y + cond
            y = y.reshape(b * n, t, c)
        elif self.along == "time":
            y = z.transpose(1, 2).reshape(b * n, t, c)
        else:
            y = self._norm(z, 3) if self.per_utterance else z
            if cond is not None and self.per_utterance:
                y = y + cond
            y = y.reshape(b * t, n, c)
        if not self.per_utterance:
            y = self._norm(y, 2)
            if cond is not None:  # (B, 1, 1, C) -> one row per sequence
                y = y + cond.reshape(b, 1, c).repeat_interleave(n if self.along == "time" else t, dim=0)
        if y.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # oneDNN has no bf16 LSTM primitive on CPUs without AVX-512 ("could not create a primitive descriptor"
            # on an AVX2-only AMD EPYC): under CPU autocast the BLSTM runs in float32 on every CPU alike
            with torch.autocast("cpu", enabled=False):
                y, _ = self.rnn(y.float())
        else:
            y, _ = self.rnn(y)
        y = self.proj(y)
        if self.along == "time":
            return z + y.reshape(b, n, t, c).transpose(1, 2)
        return z + y.reshape(b, t, n, c)


class RNNStack(nn.Module):
    """``num_layers`` x (time BLSTM block, band BLSTM block) on (B, T, N, C); optional per-layer condition."""

    def __init__(self, channels: int, hidden: int, num_layers: int, norm: NormKind, eps: float) -> None:
        super().__init__()
        self.time_rnns = nn.ModuleList(_RNNBlock(channels, hidden, "time", norm, eps) for _ in range(num_layers))
        self.band_rnns = nn.ModuleList(_RNNBlock(channels, hidden, "band", norm, eps) for _ in range(num_layers))

    def forward(self, z: torch.Tensor, conds: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        for i, (time_rnn, band_rnn) in enumerate(zip(self.time_rnns, self.band_rnns, strict=True)):
            z = band_rnn(time_rnn(z, None if conds is None else conds[i]))
        return z


@register_model("bsrnn")
class BSRNN(nn.Module):
    """Sampling-frequency-independent BSRNN: ``forward(noisy (B, T), sr) -> enhanced (B, T)``."""

    Options = BSRNNOptions

    def __init__(self, opts: BSRNNOptions) -> None:
        super().__init__()
        self.opts = opts
        starts, widths = band_bins(opts.band_layout, opts.win_seconds, opts.max_sr)
        self.n_bins = starts[-1] + widths[-1]
        c = opts.num_channels
        hidden = opts.mask_hidden_factor * c
        band_eps = opts.band_norm_eps
        self.band_split = BandSplit(starts, widths, c, opts.norm, band_eps)
        self.rnns = RNNStack(c, opts.rnn_hidden_factor * c, opts.num_layers, opts.norm, opts.eps)
        self.mask = BandHead(starts, widths, c, hidden, 2, opts.norm, band_eps)
        self.residual = BandHead(starts, widths, c, hidden, 2, opts.norm, band_eps) if opts.residual_mask else None

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
        scale = noisy.square().mean(-1, keepdim=True).sqrt() + self.opts.eps if self.opts.input_rms_norm else None
        x = noisy if scale is None else noisy / scale
        window = torch.hann_window(n_fft, device=noisy.device, dtype=noisy.dtype)
        spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True,
                          pad_mode=stft_pad_mode(self.opts.stft_pad_mode, length, n_fft))  # (B, F, T)
        n_freq = spec.shape[1]
        n_active = self.band_split.n_active(n_freq)
        padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, 0, 0, 0, self.n_bins - n_freq))
        z = self.rnns(self.band_split(padded, n_active))  # (B, T, N, C)
        # (B, T, F, 2) head outputs sliced to this rate's bins are complex views (no copy); est in (B, T, F)
        est = torch.view_as_complex(self.mask(z, n_active)[:, :, :n_freq]) * spec.transpose(1, 2)
        if self.residual is not None:
            est = est + torch.view_as_complex(self.residual(z, n_active)[:, :, :n_freq])
        est = est.transpose(1, 2)
        enhanced = torch.istft(est, n_fft, hop, window=window, center=True, length=length)
        return enhanced if scale is None else enhanced * scale
