"""NISQA v2 (CNN-SA-AP) inference network and features, laid out to load the official checkpoints.

Independent re-implementation (inference only) of the single-ended NISQA models of Mittag et al. (2021),
https://github.com/gabrielmittag/NISQA: a log-mel spectrogram is cut into overlapping segments, an adaptive
CNN maps each segment to a vector ("framewise" stage), a self-attention stack models time dependency, and
attention pooling reduces the sequence to the predicted MOS.

The module tree mirrors the official one attribute by attribute, so the checkpoints' ``model_state_dict``
loads with ``strict=True``: ``cnn.model.conv1..6 / bn1..6 [/ fc]``, ``time_dependency.model.linear / norm1
[/ pos_encoder.pe] / layers.N.{self_attn, linear1, linear2, norm1, norm2}`` and ``pool.model.linear1..3``
(model ``NISQA``, e.g. ``weights/nisqa_mos_only.tar``) or ``pool_layers.0..4.model.linear1..3`` (model
``NISQA_DIM``, ``weights/nisqa.tar``: MOS, noisiness, discontinuity, colouration, loudness; MOS first).
Supported options are the ones the published weights use: ``cnn_model: adapt``, ``td: self_att``,
``td_2: skip``, ``pool: att``; anything else raises :class:`UnsupportedNisqaConfig`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# --- feature settings of the official CNN-SA-AP configuration (config/train_nisqa_cnn_sa_ap.yaml) ---
MS_SR = 48000  # the official scorers' 'ms_sr' (Hz); the checkpoint's value wins when it sets one
MS_N_FFT = 4096  # 'ms_n_fft': zero-padded FFT length in bins
MS_HOP_SECONDS = 0.01  # 'ms_hop_length' (seconds)
MS_WIN_SECONDS = 0.02  # 'ms_win_length' (seconds), zero-padded to MS_N_FFT
MS_N_MELS = 48  # 'ms_n_mels'
MS_FMAX = 20000.0  # 'ms_fmax' (Hz): full-band mel range
MS_SEG_LENGTH = 15  # 'ms_seg_length': spectrogram frames per CNN segment (odd)
MS_SEG_HOP = 4  # 'ms_seg_hop_length': frames between segment starts (40 ms)
MS_MAX_SEGMENTS = 1300  # 'ms_max_segments': longest sequence (1300 x 40 ms = 52 s)
# amplitude -> dB conversion of the official get_librosa_melspec (librosa.amplitude_to_db arguments)
DB_AMIN = 1e-4  # amplitude floor
DB_TOP = 80.0  # dynamic range kept below each spectrogram's peak (dB)
DB_FACTOR = 20.0  # amplitude (power=1.0 mel spectrogram) to dB
PE_MAX_LEN = 3000  # length of the optional sinusoidal positional-encoding table
PE_BASE = 10000.0  # base of the sinusoidal positional encoding
DIM_OUTPUTS = 5  # NISQA_DIM pooling heads: MOS, NOI, DIS, COL, LOUD (in that order)
MODELS = ("NISQA", "NISQA_DIM")  # single-ended models this network can host
# the ACR scale the MOS is defined on; the network's linear head is unbounded, so predictions are clamped
MOS_MIN = 1.0
MOS_MAX = 5.0


class UnsupportedNisqaConfig(ValueError):
    """The checkpoint's ``args`` select an architecture option this re-implementation does not provide."""


@dataclass(frozen=True)
class NisqaFeatures:
    """The mel-spectrogram and segmentation settings a checkpoint was trained with (its ``ms_*`` args)."""

    sr: int | None = MS_SR  # None: the official "no resampling" (windows scale with the file's rate)
    n_fft: int = MS_N_FFT
    hop_seconds: float = MS_HOP_SECONDS
    win_seconds: float = MS_WIN_SECONDS
    n_mels: int = MS_N_MELS
    fmax: float = MS_FMAX
    seg_length: int = MS_SEG_LENGTH
    seg_hop: int = MS_SEG_HOP
    max_segments: int | None = MS_MAX_SEGMENTS

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> NisqaFeatures:
        """Read the ``ms_*`` entries of a checkpoint's ``args`` (missing ones take the official defaults)."""
        sr = args.get("ms_sr", MS_SR)
        max_segments = args.get("ms_max_segments", MS_MAX_SEGMENTS)
        return cls(sr=int(sr) if sr else None, n_fft=int(args.get("ms_n_fft", MS_N_FFT)),
                   hop_seconds=float(args.get("ms_hop_length", MS_HOP_SECONDS)),
                   win_seconds=float(args.get("ms_win_length", MS_WIN_SECONDS)),
                   n_mels=int(args.get("ms_n_mels", MS_N_MELS)), fmax=float(args.get("ms_fmax", MS_FMAX)),
                   seg_length=int(args.get("ms_seg_length", MS_SEG_LENGTH)),
                   seg_hop=int(args.get("ms_seg_hop_length", MS_SEG_HOP)),
                   max_segments=int(max_segments) if max_segments else None)


@functools.lru_cache(maxsize=8)
def _mel_filters(sr: int, n_fft: int, n_mels: int, fmax: float) -> np.ndarray:
    """Slaney-normalised, Slaney-scale mel filterbank ``(n_mels, n_fft // 2 + 1)`` from 0 Hz to ``fmax``."""
    import librosa

    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=0.0, fmax=fmax, htk=False, norm="slaney")


def log_mel(x: torch.Tensor, sr: int, feats: NisqaFeatures) -> torch.Tensor:
    """``(n_mels, frames)`` dB mel spectrogram of one signal, as the official ``get_librosa_melspec``.

    Magnitude (power 1) STFT with a periodic Hann window of ``win_seconds`` zero-padded to ``n_fft``,
    centred frames with reflect padding, Slaney mel filters from 0 Hz to ``fmax``, then
    ``20 log10(max(S, 1e-4))`` floored ``DB_TOP`` dB below the spectrogram's own peak.
    """
    hop, win = int(sr * feats.hop_seconds), int(sr * feats.win_seconds)
    if x.numel() <= feats.n_fft // 2:  # reflect padding needs more samples than half the FFT
        x = F.pad(x, (0, feats.n_fft // 2 + 1 - x.numel()))
    spec = torch.stft(x, feats.n_fft, hop_length=hop, win_length=win,
                      window=torch.hann_window(win, periodic=True, dtype=x.dtype, device=x.device),
                      center=True, pad_mode="reflect", return_complex=True).abs()
    mel = torch.from_numpy(_mel_filters(sr, feats.n_fft, feats.n_mels, feats.fmax)).to(x) @ spec
    db = DB_FACTOR * torch.log10(mel.clamp_min(DB_AMIN))
    return torch.maximum(db, db.max() - DB_TOP)


def segments(spec: torch.Tensor, feats: NisqaFeatures) -> torch.Tensor:
    """``(n_segments, 1, n_mels, seg_length)`` overlapping spectrogram segments, every ``seg_hop`` frames.

    Segment ``k`` holds frames ``k*seg_hop .. k*seg_hop+seg_length-1``: ``ceil((frames-seg_length+1)/seg_hop)``
    segments, as the official ``segment_specs``. Sequences longer than ``max_segments`` (where the official
    code raises) keep their first ``max_segments`` segments; signals shorter than one segment are zero-padded
    (in dB) to one.
    """
    if spec.shape[1] < feats.seg_length:
        spec = F.pad(spec, (0, feats.seg_length - spec.shape[1]))
    segs = spec.unfold(1, feats.seg_length, feats.seg_hop).transpose(0, 1).unsqueeze(1)
    return segs[: feats.max_segments] if feats.max_segments else segs


class AdaptCnn(nn.Module):
    """Framewise CNN with adaptive max pooling (official ``AdaptCNN``): six conv+BN+ReLU layers."""

    def __init__(self, c_out_1: int, c_out_2: int, c_out_3: int, kernel_size: int | Sequence[int],
                 pool_1: Sequence[int], pool_2: Sequence[int], pool_3: Sequence[int],
                 fc_out_h: int | None) -> None:
        super().__init__()
        kernel = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        padding = (1, 0) if kernel[1] == 1 else (1, 1)  # width-1 kernels act as 1-D convolutions
        self.pools = (tuple(pool_1), tuple(pool_2), tuple(pool_3))
        self.conv1 = nn.Conv2d(1, c_out_1, kernel, padding=padding)
        self.bn1 = nn.BatchNorm2d(c_out_1)
        self.conv2 = nn.Conv2d(c_out_1, c_out_2, kernel, padding=padding)
        self.bn2 = nn.BatchNorm2d(c_out_2)
        self.conv3 = nn.Conv2d(c_out_2, c_out_3, kernel, padding=padding)
        self.bn3 = nn.BatchNorm2d(c_out_3)
        self.conv4 = nn.Conv2d(c_out_3, c_out_3, kernel, padding=padding)
        self.bn4 = nn.BatchNorm2d(c_out_3)
        self.conv5 = nn.Conv2d(c_out_3, c_out_3, kernel, padding=padding)
        self.bn5 = nn.BatchNorm2d(c_out_3)
        # the last kernel spans the whole pooled width, collapsing it to one column
        self.conv6 = nn.Conv2d(c_out_3, c_out_3, (kernel[0], pool_3[1]), padding=(1, 0))
        self.bn6 = nn.BatchNorm2d(c_out_3)
        self.flat = c_out_3 * pool_3[0]
        self.fc = nn.Linear(self.flat, fc_out_h) if fc_out_h else None
        self.fan_out = fc_out_h or self.flat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, 1, n_mels, seg_length)`` segments -> ``(n, fan_out)`` features."""
        x = F.adaptive_max_pool2d(F.relu(self.bn1(self.conv1(x))), self.pools[0])
        x = F.adaptive_max_pool2d(F.relu(self.bn2(self.conv2(x))), self.pools[1])
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.adaptive_max_pool2d(F.relu(self.bn4(self.conv4(x))), self.pools[2])
        x = F.relu(self.bn6(self.conv6(F.relu(self.bn5(self.conv5(x))))))
        x = x.reshape(x.shape[0], self.flat)
        return self.fc(x) if self.fc is not None else x


class Framewise(nn.Module):
    """Holds the CNN as ``.model`` (official key prefix ``cnn.model``) and runs it on valid segments only."""

    def __init__(self, model: AdaptCnn) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, n_wins: torch.Tensor) -> torch.Tensor:
        """``(B, L, 1, H, W)`` padded segments -> ``(B, L, fan_out)``, zeros past each row's ``n_wins``."""
        valid = torch.arange(x.shape[1], device=x.device)[None, :] < n_wins[:, None]
        out = x.new_zeros(x.shape[0], x.shape[1], self.model.fan_out)
        out[valid] = self.model(x[valid])
        return out


class PositionalEncoding(nn.Module):
    """Sinusoidal positional encoding (optional ``td_sa_pos_enc``); buffer ``pe`` is ``(max_len, 1, d)``."""

    def __init__(self, d_model: int, max_len: int = PE_MAX_LEN) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(PE_BASE) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe[:, None, :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add the encoding to batch-first ``(B, L, d)`` features."""
        return x + self.pe[: x.shape[1], 0][None]


class SelfAttentionLayer(nn.Module):
    """Post-norm transformer encoder layer with ReLU feed-forward (official ``SelfAttentionLayer``)."""

    def __init__(self, d_model: int, nhead: int, hidden: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d_model, nhead, batch_first=True)
        self.linear1 = nn.Linear(d_model, hidden)
        self.linear2 = nn.Linear(hidden, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, d)`` -> ``(B, L, d)``; ``pad_mask`` is True on padded steps."""
        x = self.norm1(x + self.self_attn(x, x, x, key_padding_mask=pad_mask, need_weights=False)[0])
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


class SelfAttention(nn.Module):
    """Input projection, layer norm, optional positional encoding and ``num_layers`` attention layers."""

    def __init__(self, input_size: int, d_model: int, nhead: int, num_layers: int, hidden: int,
                 pos_enc: bool) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.linear = nn.Linear(input_size, d_model)
        self.layers = nn.ModuleList(SelfAttentionLayer(d_model, nhead, hidden) for _ in range(num_layers))
        self.pos_encoder: nn.Module = PositionalEncoding(d_model) if pos_enc else nn.Identity()

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, input_size)`` -> ``(B, L, d_model)``."""
        x = self.pos_encoder(self.norm1(self.linear(x)))
        for layer in self.layers:
            x = layer(x, pad_mask)
        return x


class TimeDependency(nn.Module):
    """Holds the self-attention stack as ``.model`` (official key prefix ``time_dependency.model``)."""

    def __init__(self, model: SelfAttention) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """Delegate to the stack."""
        return self.model(x, pad_mask)


class AttentionPool(nn.Module):
    """Attention pooling: softmax weights over valid steps, weighted mean, linear head.

    With ``hidden`` (official ``PoolAttFF``) the scores come from ``linear2(relu(linear1(x)))`` and the head
    is ``linear3``; without it (``PoolAtt``) from ``linear1(x)`` with head ``linear2``.
    """

    def __init__(self, d_input: int, hidden: int | None, output_size: int = 1) -> None:
        super().__init__()
        self.feed_forward = hidden is not None
        if hidden is not None:
            self.linear1 = nn.Linear(d_input, hidden)
            self.linear2 = nn.Linear(hidden, 1)
            self.linear3 = nn.Linear(d_input, output_size)
        else:
            self.linear1 = nn.Linear(d_input, 1)
            self.linear2 = nn.Linear(d_input, output_size)

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L, d)`` -> ``(B, output_size)``."""
        scores = self.linear2(F.relu(self.linear1(x))) if self.feed_forward else self.linear1(x)
        weights = torch.softmax(scores.squeeze(-1).masked_fill(pad_mask, float("-inf")), dim=1)
        pooled = torch.einsum("bl,bld->bd", weights, x)
        return self.linear3(pooled) if self.feed_forward else self.linear2(pooled)


class Pooling(nn.Module):
    """Holds the pooling head as ``.model`` (official key prefix ``pool.model`` / ``pool_layers.N.model``)."""

    def __init__(self, model: AttentionPool) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, pad_mask: torch.Tensor) -> torch.Tensor:
        """Delegate to the head."""
        return self.model(x, pad_mask)


def _require(args: Mapping[str, Any], key: str, allowed: Sequence[Any]) -> None:
    value = args.get(key, allowed[0])
    if value not in allowed:
        raise UnsupportedNisqaConfig(f"NISQA checkpoint option {key}={value!r} is not supported "
                                     f"(supported: {', '.join(map(repr, allowed))})")


class NisqaNet(nn.Module):
    """Single-ended NISQA / NISQA_DIM network built from a checkpoint's ``args`` (official key names)."""

    def __init__(self, args: Mapping[str, Any]) -> None:
        super().__init__()
        _require(args, "model", MODELS)
        _require(args, "cnn_model", ("adapt",))
        _require(args, "td", ("self_att",))
        _require(args, "td_2", ("skip", None))
        _require(args, "pool", ("att",))
        self.dim = args.get("model") == "NISQA_DIM"
        self.cnn = Framewise(AdaptCnn(int(args["cnn_c_out_1"]), int(args["cnn_c_out_2"]),
                                      int(args["cnn_c_out_3"]), args["cnn_kernel_size"], args["cnn_pool_1"],
                                      args["cnn_pool_2"], args["cnn_pool_3"], args.get("cnn_fc_out_h")))
        d_model = int(args["td_sa_d_model"])
        self.time_dependency = TimeDependency(SelfAttention(
            self.cnn.model.fan_out, d_model, int(args["td_sa_nhead"]), int(args["td_sa_num_layers"]),
            int(args["td_sa_h"]), bool(args.get("td_sa_pos_enc"))))
        hidden = args.get("pool_att_h")
        hidden = int(hidden) if hidden is not None else None
        if self.dim:
            self.pool_layers = nn.ModuleList(Pooling(AttentionPool(d_model, hidden)) for _ in range(DIM_OUTPUTS))
        else:
            self.pool = Pooling(AttentionPool(d_model, hidden))

    def forward(self, x: torch.Tensor, n_wins: torch.Tensor) -> torch.Tensor:
        """``(B, L, 1, n_mels, seg_length)`` padded segments + valid counts -> ``(B, 1)`` or ``(B, 5)``.

        Raw predictions (unclamped, as the official code returns them); MOS is column 0.
        """
        pad_mask = torch.arange(x.shape[1], device=x.device)[None, :] >= n_wins[:, None]
        h = self.time_dependency(self.cnn(x, n_wins), pad_mask)
        if self.dim:
            return torch.cat([head(h, pad_mask) for head in self.pool_layers], dim=1)
        return self.pool(h, pad_mask)


def predict_mos(model: NisqaNet, feats: NisqaFeatures, signals: Sequence[np.ndarray], rates: Sequence[int],
                device: str = "cpu") -> np.ndarray:
    """MOS of each signal (already at ``feats.sr`` when that is set), clamped to ``[MOS_MIN, MOS_MAX]``."""
    segs = [segments(log_mel(torch.as_tensor(np.asarray(x, dtype=np.float32), device=device), int(sr), feats),
                     feats) for x, sr in zip(signals, rates, strict=True)]
    n_wins = torch.tensor([len(s) for s in segs], device=device)
    batch = torch.nn.utils.rnn.pad_sequence(segs, batch_first=True)
    with torch.inference_mode():
        mos = model(batch, n_wins)[:, 0]
    return mos.clamp(MOS_MIN, MOS_MAX).double().cpu().numpy()
