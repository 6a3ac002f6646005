"""OWSM-CTC language identification, the official URGENT 2026 LID model, from a local ESPnet download.

The official script (``evaluation_metrics/calculate_lid_accuracy.py``) loads
``Speech2TextGreedySearch.from_pretrained("espnet/owsm_ctc_v4_1B", lang_sym="<nolang>", task_sym="<asr>")``,
runs it on the estimate at 16 kHz and takes the first token of the greedy CTC output (``<eng>``, ``<deu>``, ...)
as the language; LAcc is 1 where it names the row's language. ESPnet is not a dependency here (see
:mod:`.rawnet3` for why), so the inference graph of ESPnet's ``ESPnetS2TCTCModel`` is rebuilt in torch from the
download's ``config.yaml``:

- frontend (``default``): STFT (Hann window, centred, reflect padding), power spectrum, the stored mel matrix,
  natural log of the mel energies clamped at 1e-10;
- normalisation (``global_mvn``): the stored mean and standard deviation (or ``utterance_mvn``: the utterance's
  own);
- prompt: the ``<na>`` token (no previous text) embedded, scaled with sinusoidal positions, through a pre-norm
  Transformer encoder; projected to the main encoder's width as the cross-attention memory;
- encoder (``e_branchformer_ctc``): conv2d subsampling by 8, the ``<nolang>`` and ``<asr>`` prefix embeddings
  placed before the frames, absolute sinusoidal positions, E-Branchformer blocks (macaron feed-forward,
  self-attention beside a convolutional gating MLP, depth-wise convolution merge, cross-attention to the prompt
  in the blocks the config names), intermediate CTC self-conditioning after the blocks the config names;
- CTC greedy search: arg max per frame, repeats merged, blanks dropped.

Module and parameter names follow the ESPnet state dict, so the model file loads with ``weights_only=True`` and
strict key matching; the mel matrix and the normalisation statistics come from that file, as ESPnet's load
overwrites its own. A graph this module does not implement (relative positions, another subsampling, another
encoder or frontend, ...) is refused with the file and the setting named. One utterance per pass, as the
official script runs it. Equality with ESPnet's own inference: ``benchmarks/check_owsm_ctc.py`` (needs an ESPnet
install of its own).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from curator.evaluation.metrics import espnet_files

SR = 16000
MODEL = "OWSM-CTC"
HF_MODEL = "espnet/owsm_ctc_v4_1B"
"""The model the official LID script downloads."""
LANG_SYM, TASK_SYM = "<nolang>", "<asr>"
"""The official script's prefix: no language given, speech recognition."""
LAYER_NORM_EPS = 1e-12
"""ESPnet's LayerNorm epsilon."""
LOG_FLOOR = 1e-10
"""ESPnet's clamp of the mel energies before the log."""
SUBSAMPLING = 8
CONV_CONTEXT = 15
"""Frames the three stride-2 3x3 convolutions of ``conv2d8`` need at least (ESPnet refuses shorter input)."""
MAX_POSITIONS = 5000
"""ESPnet's ``PositionalEncoding`` table length (``max_pos_emb_len`` of the encoder, the default of the prompt's)."""
ACTIVATIONS = {"swish": lambda: _Swish(), "relu": nn.ReLU, "tanh": nn.Tanh, "identity": nn.Identity}


@dataclass(frozen=True)
class OwsmCtcConfig:
    """The hyperparameters of the inference graph. The defaults are espnet/owsm_ctc_v4_1B's (its training config in
    ESPnet's egs2/owsm_ctc_v4); :func:`config_from_espnet` fills what a config leaves out with ESPnet's class
    defaults, as ESPnet does."""

    token_list: tuple[str, ...]
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    n_mels: int = 128
    normalize: str | None = "global_mvn"
    norm_means: bool = True
    norm_vars: bool = True
    mvn_eps: float = 1e-20
    size: int = 1024
    heads: int = 16
    cgmlp_units: int = 4096
    cgmlp_kernel: int = 31
    linear_after_conv: bool = False
    gate_activation: str = "identity"
    num_blocks: int = 27
    use_ffn: bool = True
    macaron_ffn: bool = True
    ffn_activation: str = "swish"
    linear_units: int = 4096
    merge_kernel: int = 31
    max_positions: int = MAX_POSITIONS
    interctc_layers: tuple[int, ...] = (6, 12, 15, 21)
    interctc_conditioning: bool = True
    cross_attention: tuple[bool, ...] = field(default=tuple(i % 3 == 2 for i in range(27)))
    prompt_size: int = 512
    prompt_heads: int = 8
    prompt_units: int = 2048
    prompt_blocks: int = 4
    prompt_normalize_before: bool = True
    sym_blank: str = "<blank>"
    sym_na: str = "<na>"

    def __post_init__(self) -> None:
        if len(self.cross_attention) != self.num_blocks:
            raise ValueError(f"cross_attention names {len(self.cross_attention)} blocks, not num_blocks "
                             f"{self.num_blocks}")


class _Swish(nn.Module):
    """ESPnet's swish, ``x * sigmoid(x)`` (not fused SiLU: the same floats as ESPnet)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


def _layer_norm(size: int) -> nn.LayerNorm:
    return nn.LayerNorm(size, eps=LAYER_NORM_EPS)


@functools.lru_cache(maxsize=8)
def sinusoids(length: int, size: int) -> torch.Tensor:
    """ESPnet's absolute positional encoding table (1, length, size), float32, on the CPU. Computed at ESPnet's
    length (:func:`add_positions`): the vectorised sine of a longer table may differ in the last bit at the
    positions a shorter table computes in its scalar tail."""
    pe = torch.zeros(length, size)
    position = torch.arange(0, length, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, size, 2, dtype=torch.float32) * -(math.log(10000.0) / size))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


def add_positions(x: torch.Tensor, max_len: int = MAX_POSITIONS) -> torch.Tensor:
    """``x * sqrt(d) + positions``, as ESPnet's ``PositionalEncoding`` (no dropout at inference): its table holds
    ``max_len`` positions, or exactly as many as the input has where that is more."""
    table = sinusoids(max(max_len, x.size(1)), x.size(-1))
    return x * math.sqrt(x.size(-1)) + table[:, :x.size(1)].to(x.device, x.dtype)


class Attention(nn.Module):
    """ESPnet's ``MultiHeadedAttention``: scores scaled after the product, softmax, weighted sum, output projection.
    Without a mask for one unpadded utterance; with ``mask`` (True where a query may attend) ESPnet's masking: the
    masked scores set to the lowest float before the softmax and their weights to 0 after it."""

    def __init__(self, heads: int, size: int) -> None:
        super().__init__()
        self.h, self.d_k = heads, size // heads
        self.linear_q, self.linear_k = nn.Linear(size, size), nn.Linear(size, size)
        self.linear_v, self.linear_out = nn.Linear(size, size), nn.Linear(size, size)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b = query.size(0)
        q = self.linear_q(query).view(b, -1, self.h, self.d_k).transpose(1, 2)
        k = self.linear_k(memory).view(b, -1, self.h, self.d_k).transpose(1, 2)
        v = self.linear_v(memory).view(b, -1, self.h, self.d_k).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_k)
        if mask is None:
            weights = torch.softmax(scores, dim=-1)
        else:
            masked = mask.unsqueeze(1).eq(0)
            scores = scores.masked_fill(masked, torch.finfo(scores.dtype).min)
            weights = torch.softmax(scores, dim=-1).masked_fill(masked, 0.0)
        x = torch.matmul(weights, v)
        return self.linear_out(x.transpose(1, 2).contiguous().view(b, -1, self.h * self.d_k))


class FeedForward(nn.Module):
    def __init__(self, size: int, units: int, activation: str) -> None:
        super().__init__()
        self.w_1, self.w_2 = nn.Linear(size, units), nn.Linear(units, size)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_2(self.activation(self.w_1(x)))


class GatingUnit(nn.Module):
    """Convolutional spatial gating: half the channels, normalised and convolved depth-wise, gate the other half."""

    def __init__(self, units: int, kernel: int, linear_after_conv: bool, activation: str) -> None:
        super().__init__()
        half = units // 2
        self.norm = _layer_norm(half)
        self.conv = nn.Conv1d(half, half, kernel, 1, (kernel - 1) // 2, groups=half)
        self.linear = nn.Linear(half, half) if linear_after_conv else None
        self.act = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_r, x_g = x.chunk(2, dim=-1)
        x_g = self.conv(self.norm(x_g).transpose(1, 2)).transpose(1, 2)
        if self.linear is not None:
            x_g = self.linear(x_g)
        return x_r * self.act(x_g)


class GatingMLP(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.channel_proj1 = nn.Sequential(nn.Linear(cfg.size, cfg.cgmlp_units), nn.GELU())
        self.csgu = GatingUnit(cfg.cgmlp_units, cfg.cgmlp_kernel, cfg.linear_after_conv, cfg.gate_activation)
        self.channel_proj2 = nn.Linear(cfg.cgmlp_units // 2, cfg.size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.channel_proj2(self.csgu(self.channel_proj1(x)))


class EBranchformerBlock(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig, cross_attention: bool) -> None:
        super().__init__()
        size = cfg.size
        self.attn, self.cgmlp = Attention(cfg.heads, size), GatingMLP(cfg)
        self.feed_forward = FeedForward(size, cfg.linear_units, cfg.ffn_activation) if cfg.use_ffn else None
        self.feed_forward_macaron = (FeedForward(size, cfg.linear_units, cfg.ffn_activation)
                                     if cfg.use_ffn and cfg.macaron_ffn else None)
        self.ff_scale = 0.5 if self.feed_forward_macaron is not None else 1.0
        if self.feed_forward is not None:
            self.norm_ff = _layer_norm(size)
        if self.feed_forward_macaron is not None:
            self.norm_ff_macaron = _layer_norm(size)
        self.norm_mha, self.norm_mlp, self.norm_final = _layer_norm(size), _layer_norm(size), _layer_norm(size)
        self.cross_attn = Attention(cfg.heads, size) if cross_attention else None
        if self.cross_attn is not None:
            self.norm_cross_attn = _layer_norm(size)
        k = cfg.merge_kernel
        self.depthwise_conv_fusion = nn.Conv1d(2 * size, 2 * size, k, 1, (k - 1) // 2, groups=2 * size)
        self.merge_proj = nn.Linear(2 * size, size)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        if self.feed_forward_macaron is not None:
            x = x + self.ff_scale * self.feed_forward_macaron(self.norm_ff_macaron(x))
        x_norm = self.norm_mha(x)
        x_att = self.attn(x_norm, x_norm)
        x_mlp = self.cgmlp(self.norm_mlp(x))
        x_concat = torch.cat([x_att, x_mlp], dim=-1)
        x_tmp = self.depthwise_conv_fusion(x_concat.transpose(1, 2)).transpose(1, 2)
        x = x + self.merge_proj(x_concat + x_tmp)
        if self.feed_forward is not None:
            x = x + self.ff_scale * self.feed_forward(self.norm_ff(x))
        if self.cross_attn is not None:
            x = x + self.cross_attn(self.norm_cross_attn(x), memory)
        return self.norm_final(x)


class ConvSubsampling(nn.Module):
    """ESPnet's ``conv2d`` (``layers=2``, its projection inside a Sequential: ``out.0``) and ``conv2d8``
    (``layers=3``, ``out``): 3x3 convolutions of stride 2 with ReLU over (time, mel), flattened and projected."""

    def __init__(self, n_mels: int, size: int, layers: int, sequential_out: bool) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        freq = n_mels
        for i in range(layers):
            convs += [nn.Conv2d(1 if i == 0 else size, size, 3, 2), nn.ReLU()]
            freq = (freq - 1) // 2
        self.conv = nn.Sequential(*convs)
        out = nn.Linear(size * freq, size)
        self.out = nn.Sequential(out) if sequential_out else out

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.conv(feats.unsqueeze(1))
        b, c, t, f = x.size()
        return self.out(x.transpose(1, 2).contiguous().view(b, t, c * f))


class Encoder(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.embed = ConvSubsampling(cfg.n_mels, cfg.size, layers=3, sequential_out=False)
        self.encoders = nn.ModuleList(EBranchformerBlock(cfg, c) for c in cfg.cross_attention)
        self.after_norm = _layer_norm(cfg.size)
        self.interctc_layers = frozenset(cfg.interctc_layers)
        self.max_positions = cfg.max_positions
        self.conditioning_layer = (nn.Linear(len(cfg.token_list), cfg.size) if cfg.interctc_conditioning
                                   else None)

    def forward(self, feats: torch.Tensor, prefix: torch.Tensor, memory: torch.Tensor,
                ctc_lo: nn.Linear) -> torch.Tensor:
        x = add_positions(torch.cat([prefix, self.embed(feats)], dim=1), self.max_positions)
        for index, block in enumerate(self.encoders, start=1):
            x = block(x, memory)
            if index in self.interctc_layers and self.conditioning_layer is not None:
                x = x + self.conditioning_layer(torch.softmax(ctc_lo(x), dim=2))
        return self.after_norm(x)


class PromptLayer(nn.Module):
    """ESPnet's Transformer ``EncoderLayer`` (self-attention, then a ReLU feed-forward, each with a residual)."""

    def __init__(self, size: int, heads: int, units: int, normalize_before: bool) -> None:
        super().__init__()
        self.self_attn, self.feed_forward = Attention(heads, size), FeedForward(size, units, "relu")
        self.norm1, self.norm2 = _layer_norm(size), _layer_norm(size)
        self.normalize_before = normalize_before

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.norm1(x) if self.normalize_before else x
        x = x + self.self_attn(pre, pre)
        if not self.normalize_before:
            x = self.norm1(x)
        x = x + self.feed_forward(self.norm2(x) if self.normalize_before else x)
        return x if self.normalize_before else self.norm2(x)


class PromptEncoder(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(PromptLayer(cfg.prompt_size, cfg.prompt_heads, cfg.prompt_units,
                                                  cfg.prompt_normalize_before) for _ in range(cfg.prompt_blocks))
        self.after_norm = _layer_norm(cfg.prompt_size) if cfg.prompt_normalize_before else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.encoders:
            x = layer(x)
        return x if self.after_norm is None else self.after_norm(x)


class Frontend(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.n_fft, self.win_length, self.hop_length = cfg.n_fft, cfg.win_length, cfg.hop_length
        self.logmel = nn.Module()
        self.logmel.register_buffer("melmat", torch.zeros(cfg.n_fft // 2 + 1, cfg.n_mels))

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        window = torch.hann_window(self.win_length, dtype=wav.dtype, device=wav.device)
        spec = torch.stft(wav.float(), n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length,
                          center=True, window=window, normalized=False, onesided=True, return_complex=True)
        parts = torch.view_as_real(spec).type(wav.dtype).transpose(1, 2)  # (B, T, F, 2)
        power = parts[..., 0] ** 2 + parts[..., 1] ** 2
        return torch.clamp(torch.matmul(power, self.logmel.melmat), min=LOG_FLOOR).log()


class GlobalMVN(nn.Module):
    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.norm_means, self.norm_vars = cfg.norm_means, cfg.norm_vars
        self.register_buffer("mean", torch.zeros(cfg.n_mels, dtype=torch.float64))
        self.register_buffer("std", torch.ones(cfg.n_mels, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_means:
            x = x - self.mean.to(x.device, x.dtype)
        return x / self.std.to(x.device, x.dtype) if self.norm_vars else x


class UtteranceMVN(nn.Module):
    """ESPnet's ``utterance_mvn``: the utterance's own mean over time removed (and its standard deviation, clamped
    at ``eps``, divided out with ``norm_vars``)."""

    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.norm_means, self.norm_vars, self.eps = cfg.norm_means, cfg.norm_vars, cfg.mvn_eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = torch.full((), x.size(1), dtype=x.dtype, device=x.device)
        mean = x.sum(dim=1, keepdim=True) / frames
        if self.norm_means:
            x = x - mean
            if self.norm_vars:
                x = x / torch.clamp((x.pow(2).sum(dim=1, keepdim=True) / frames).sqrt(), min=self.eps)
        elif self.norm_vars:
            x = x / torch.clamp(((x - mean).pow(2).sum(dim=1, keepdim=True) / frames).sqrt(), min=self.eps)
        return x


def normalizer(cfg: OwsmCtcConfig) -> nn.Module | None:
    """The feature normalisation ``cfg`` names (None: none)."""
    return {"global_mvn": GlobalMVN, "utterance_mvn": UtteranceMVN}[cfg.normalize](cfg) if cfg.normalize else None


class Ctc(nn.Module):
    def __init__(self, size: int, vocab: int) -> None:
        super().__init__()
        self.ctc_lo = nn.Linear(size, vocab)


class OwsmCtc(nn.Module):
    """The inference graph of ESPnet's ``ESPnetS2TCTCModel``; :meth:`greedy` is ``Speech2TextGreedySearch``."""

    def __init__(self, cfg: OwsmCtcConfig) -> None:
        super().__init__()
        self.cfg = cfg
        vocab = len(cfg.token_list)
        self.frontend = Frontend(cfg)
        self.normalize = normalizer(cfg)
        self.encoder = Encoder(cfg)
        self.prompt_encoder = PromptEncoder(cfg)
        self.embed = nn.Embedding(vocab, cfg.prompt_size)
        wider = cfg.size != cfg.prompt_size
        self.embed_proj = nn.Linear(cfg.prompt_size, cfg.size) if wider else nn.Identity()
        self.prompt_proj = nn.Linear(cfg.prompt_size, cfg.size) if wider else nn.Identity()
        self.ctc = Ctc(cfg.size, vocab)
        self.token_id = {t: i for i, t in enumerate(cfg.token_list)}
        for sym in (cfg.sym_blank, cfg.sym_na, LANG_SYM, TASK_SYM):
            if sym not in self.token_id:
                raise ValueError(f"the token list has no {sym} (needed by the official LID call)")

    def encode(self, wav: torch.Tensor, lang_sym: str = LANG_SYM, task_sym: str = TASK_SYM) -> torch.Tensor:
        """Encoder output (1, 2 + frames/8, size) of one waveform (1, samples): frames of the prefix included."""
        device = wav.device
        text_prev = torch.tensor([[self.token_id[self.cfg.sym_na]]], device=device)
        memory = self.prompt_proj(self.prompt_encoder(add_positions(self.embed(text_prev))))
        feats = self.frontend(wav)
        if self.normalize is not None:
            feats = self.normalize(feats)
        prefix = torch.tensor([[self.token_id[lang_sym], self.token_id[task_sym]]], device=device)
        return self.encoder(feats, self.embed_proj(self.embed(prefix)), memory, self.ctc.ctc_lo)

    def greedy(self, wav: torch.Tensor, lang_sym: str = LANG_SYM, task_sym: str = TASK_SYM) -> list[str]:
        """Tokens of the greedy CTC search: arg max per frame, repeats merged, blanks dropped."""
        ids = torch.unique_consecutive(self.ctc.ctc_lo(self.encode(wav, lang_sym, task_sym)).argmax(dim=2)[0])
        blank = self.token_id[self.cfg.sym_blank]
        return [self.cfg.token_list[i] for i in ids.cpu().tolist() if i != blank]


def min_samples(cfg: OwsmCtcConfig) -> int:
    """The shortest input (samples) whose STFT has the ``CONV_CONTEXT`` frames the subsampling needs."""
    return (CONV_CONTEXT - 1) * cfg.hop_length


def language(model: OwsmCtc, x: np.ndarray, device: str = "cpu") -> str | None:
    """The language token (``<eng>``) the official LID call reads off one 16 kHz signal: the first token of the
    greedy output. None for a signal too short for the subsampling (ESPnet raises) or an empty output (the
    official script fails on it): the row is not identified."""
    if len(x) < min_samples(model.cfg):
        return None
    with torch.inference_mode():
        tokens = model.greedy(torch.as_tensor(np.asarray(x, np.float32), device=device)[None])
    return tokens[0] if tokens else None


SUPPORTED = {"frontend": "default", "normalize": ("global_mvn", "utterance_mvn", None),
             "encoder": "e_branchformer_ctc", "promptencoder": "transformer", "model": "espnet_ctc"}
"""The ESPnet class choices this module rebuilds (espnet/owsm_ctc_v4_1B's, and utterance_mvn)."""
CLASS_DEFAULTS = {"frontend": "default", "normalize": "utterance_mvn", "model": "espnet_ctc"}
"""ESPnet's ``s2t_ctc`` task defaults for a choice the config leaves out (its configs spell every one out)."""
IGNORED_ENCODER = {"dropout_rate", "positional_dropout_rate", "attention_dropout_rate", "zero_triu", "padding_idx",
                   "layer_drop_rate", "use_flash_attn", "rel_pos_type"}
"""Encoder settings that do not change inference (dropouts, and flash attention, which inference turns off)."""
FIXED_ENCODER = {"attention_layer_type": "selfattn", "pos_enc_layer_type": "abs_pos", "input_layer": "conv2d8",
                 "positionwise_layer_type": "linear"}
FIXED_PROMPT = {"concat_after": False, "positionwise_layer_type": "linear", "qk_norm": False,
                "interctc_layer_idx": [], "interctc_use_conditioning": False}
FIXED_FRONTEND = {"window": "hann", "center": True, "normalized": False, "onesided": True, "apply_stft": True,
                  "fs": SR}


def _fixed(section: dict[str, Any], fixed: dict[str, Any], name: str, source: Path, model: str = MODEL) -> None:
    for key, want in fixed.items():
        got = section.get(key, want)
        if isinstance(got, str) and isinstance(want, int) and not isinstance(want, bool):
            got = int(float(got.rstrip("k")) * 1000) if got.endswith("k") else int(got)
        if got != want and not (want == [] and got is None):
            raise ValueError(f"{source}: {name}.{key} is {got!r}; the {model} rebuild implements only {want!r}")


def tokens_of(cfg: dict[str, Any], source: Path) -> tuple[str, ...]:
    """The config's token list (inline, or a file named relative to the config)."""
    tokens = cfg.get("token_list")
    if isinstance(tokens, str):
        path = Path(tokens) if Path(tokens).is_absolute() else source.parent / tokens
        if not path.is_file():
            raise ValueError(f"{source}: token_list names {tokens!r}, which is not a file (relative to the config)")
        tokens = path.read_text(encoding="utf-8").splitlines()
    if not isinstance(tokens, list) or not tokens:
        raise ValueError(f"{source}: no token_list")
    return tuple(str(t).rstrip() for t in tokens)


def frontend_settings(cfg: dict[str, Any], source: Path, model: str) -> dict[str, Any]:
    """:class:`OwsmCtcConfig`'s frontend and normalisation fields from an ESPnet ``config.yaml`` (ESPnet's class
    defaults where it leaves one out); ValueError naming ``source`` and the setting for what is not implemented."""
    if cfg.get("input_size") is not None:
        raise ValueError(f"{source}: input_size is set (features from the data loader); the {model} rebuild "
                         "computes them from the waveform")
    front = espnet_files.conf(cfg, "frontend", {"fs", "n_fft", "win_length", "hop_length", "n_mels", "fmin",
                                                "fmax", "htk", "frontend_conf", *FIXED_FRONTEND}, source, model)
    _fixed(front, FIXED_FRONTEND, "frontend_conf", source, model)
    nested = front.get("frontend_conf") or {}
    if nested.get("use_wpe") or nested.get("use_beamformer"):
        raise ValueError(f"{source}: frontend_conf.frontend_conf turns on WPE or a beamformer; not implemented")
    mvn = espnet_files.conf(cfg, "normalize", {"stats_file", "norm_means", "norm_vars", "eps"}, source, model)
    normalize = cfg["normalize"] if "normalize" in cfg else CLASS_DEFAULTS["normalize"]
    return {"n_fft": int(front.get("n_fft", 512)),
            "win_length": int(front.get("win_length") or front.get("n_fft", 512)),
            "hop_length": int(front.get("hop_length", 128)), "n_mels": int(front.get("n_mels", 80)),
            "normalize": normalize, "norm_means": bool(mvn.get("norm_means", True)),
            "norm_vars": bool(mvn.get("norm_vars", normalize == "global_mvn")), "mvn_eps": float(mvn.get("eps", 1e-20))}


ENCODER_SETTINGS = {"output_size", "attention_heads", "cgmlp_linear_units", "cgmlp_conv_kernel",
                    "use_linear_after_conv", "gate_activation", "num_blocks", "use_ffn", "macaron_ffn",
                    "ffn_activation_type", "linear_units", "merge_conv_kernel", "max_pos_emb_len"}
"""The E-Branchformer settings :class:`OwsmCtcConfig` takes, in both OWSM encoders."""


def encoder_settings(cfg: dict[str, Any], source: Path, model: str,
                     extra: set[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """:class:`OwsmCtcConfig`'s E-Branchformer fields from an ESPnet ``config.yaml`` (ESPnet's class defaults where
    it leaves one out), and the ``encoder_conf`` section (settings in ``extra`` allowed in it too, for the caller
    to check); ValueError naming ``source`` and the setting for what is not implemented."""
    enc = espnet_files.conf(cfg, "encoder", {*ENCODER_SETTINGS, *extra, *IGNORED_ENCODER}, source, model)
    for key, act in (("gate_activation", enc.get("gate_activation", "identity")),
                     ("ffn_activation_type", enc.get("ffn_activation_type", "swish"))):
        if act not in ACTIVATIONS:
            raise ValueError(f"{source}: encoder_conf.{key} is {act!r}; implemented: {sorted(ACTIVATIONS)}")
    return {"size": int(enc.get("output_size", 256)), "heads": int(enc.get("attention_heads", 4)),
            "cgmlp_units": int(enc.get("cgmlp_linear_units", 2048)),
            "cgmlp_kernel": int(enc.get("cgmlp_conv_kernel", 31)),
            "linear_after_conv": bool(enc.get("use_linear_after_conv", False)),
            "gate_activation": str(enc.get("gate_activation", "identity")), "num_blocks": int(enc.get("num_blocks", 12)),
            "use_ffn": bool(enc.get("use_ffn", False)), "macaron_ffn": bool(enc.get("macaron_ffn", False)),
            "ffn_activation": str(enc.get("ffn_activation_type", "swish")),
            "linear_units": int(enc.get("linear_units", 2048)), "merge_kernel": int(enc.get("merge_conv_kernel", 3)),
            "max_positions": int(enc.get("max_pos_emb_len", MAX_POSITIONS))}, enc


def config_from_espnet(cfg: dict[str, Any], source: Path) -> OwsmCtcConfig:
    """The inference graph's hyperparameters from an ESPnet ``s2t_ctc`` ``config.yaml``; ValueError naming
    ``source`` and the setting for a model of another kind."""
    for key, want in SUPPORTED.items():
        got = cfg[key] if key in cfg else CLASS_DEFAULTS.get(key)
        if got not in (want if isinstance(want, tuple) else (want,)):
            raise ValueError(f"{source}: {key} is {got!r}; only ESPnet's OWSM-CTC ({HF_MODEL}'s "
                             f"{', '.join(f'{k}: {v}' for k, v in SUPPORTED.items())}) can be loaded")
    front = frontend_settings(cfg, source, MODEL)
    enc, section = encoder_settings(cfg, source, MODEL, {"interctc_layer_idx", "interctc_use_conditioning",
                                                         "use_cross_attention", *FIXED_ENCODER})
    _fixed(section, FIXED_ENCODER, "encoder_conf", source)
    prompt = espnet_files.conf(cfg, "promptencoder", {
        "output_size", "attention_heads", "linear_units", "num_blocks", "normalize_before", "dropout_rate",
        "positional_dropout_rate", "attention_dropout_rate", "input_layer", "layer_drop_rate", "use_flash_attn",
        "padding_idx", "positionwise_conv_kernel_size", *FIXED_PROMPT}, source, MODEL)
    _fixed(prompt, FIXED_PROMPT, "promptencoder_conf", source)
    model = cfg.get("model_conf") or {}
    blocks = enc["num_blocks"]
    cross = section.get("use_cross_attention", True)
    cross = [bool(cross)] * blocks if isinstance(cross, (bool, int)) else [bool(c) for c in cross]
    if len(cross) != blocks:
        raise ValueError(f"{source}: encoder_conf.use_cross_attention names {len(cross)} blocks, num_blocks is "
                         f"{blocks}")
    interctc = tuple(int(i) for i in section.get("interctc_layer_idx") or ())
    return OwsmCtcConfig(
        token_list=tokens_of(cfg, source), **front, **enc, interctc_layers=interctc,
        interctc_conditioning=bool(section.get("interctc_use_conditioning", False)), cross_attention=tuple(cross),
        prompt_size=int(prompt.get("output_size", 256)), prompt_heads=int(prompt.get("attention_heads", 4)),
        prompt_units=int(prompt.get("linear_units", 2048)), prompt_blocks=int(prompt.get("num_blocks", 6)),
        prompt_normalize_before=bool(prompt.get("normalize_before", True)),
        sym_blank=str(model.get("sym_blank", "<blank>")), sym_na=str(model.get("sym_na", "<na>")))


def locate(path: Path) -> tuple[Path, Path]:
    """``(config.yaml, model file)`` of an OWSM-CTC download (``huggingface-cli download espnet/owsm_ctc_v4_1B
    --local-dir DIR``): see :func:`.espnet_files.locate`."""
    return espnet_files.locate(path, MODEL)


def is_espnet_download(path: Path) -> bool:
    """Whether ``path`` looks like an ESPnet download (a ``.pth``, or a folder with a ``meta.yaml`` or a
    ``config.yaml`` and a ``.pth``) rather than a Hugging Face model folder (``config.json``)."""
    if path.is_file():
        return path.suffix == ".pth"
    if not path.is_dir() or (path / "config.json").is_file():
        return False
    return (path / "meta.yaml").is_file() or (any(path.rglob("config.yaml")) and any(path.rglob("*.pth")))


def load_owsm_ctc(path: str | Path, device: str = "cpu") -> OwsmCtc:
    """The OWSM-CTC of an ESPnet download (see :func:`locate`) in eval mode on ``device``."""
    cfg_path, model_path = locate(Path(path))
    model = OwsmCtc(config_from_espnet(espnet_files.read_config(cfg_path), cfg_path))
    espnet_files.load_state(model, model_path, cfg_path, MODEL)
    return model.eval().to(device)


def probe_signal(seconds: float, seed: int) -> np.ndarray:
    """A non-stationary 16 kHz test signal (a tone that jumps in pitch and level every 125 ms, over a little
    noise), so that a randomly initialised model's frames, and its greedy tokens, differ along the signal."""
    rng = np.random.default_rng(seed)
    n, step = int(seconds * SR), SR // 8
    pitches = 200.0 * 2.0 ** (4.0 * rng.random(-(-n // step)))
    phase = 2.0 * np.pi * np.cumsum(np.repeat(pitches, step)[:n]) / SR
    level = np.repeat(rng.random(len(pitches)), step)[:n]
    return (0.3 * level * np.sin(phase) + 0.01 * rng.standard_normal(n)).astype(np.float32)


EXP_DIR = "exp/s2t_train_owsm_ctc"
"""Where the test download keeps its training config and checkpoint, relative to the download."""


def small_config(languages: tuple[str, ...] = ("<eng>", "<deu>", "<fra>", "<zho>")) -> OwsmCtcConfig:
    """A small OWSM-CTC of every feature the official one has (prompt encoder of another width, cross-attention
    in some blocks, intermediate CTC conditioning, macaron feed-forwards), for tests and the ESPnet check."""
    tokens = ("<blank>", "<unk>", "<na>", "<nolang>", *languages, "<asr>", "<st_eng>", "<notimestamps>",
              "▁a", "▁b", "c", "d", "<sos>", "<eos>", "<sop>")
    return OwsmCtcConfig(token_list=tokens, n_mels=32, size=32, heads=4, cgmlp_units=64, cgmlp_kernel=7,
                         num_blocks=3, linear_units=48, merge_kernel=5, interctc_layers=(1, 2),
                         interctc_conditioning=True, cross_attention=(False, True, True), prompt_size=16,
                         prompt_heads=2, prompt_units=24, prompt_blocks=2)


def espnet_config(cfg: OwsmCtcConfig) -> dict[str, Any]:
    """The ESPnet ``s2t_ctc`` training config of ``cfg`` (what a download's ``config.yaml`` holds for it)."""
    return {
        "token_list": list(cfg.token_list), "input_size": None, "init": None,
        "frontend": "default", "frontend_conf": {"n_fft": cfg.n_fft, "win_length": cfg.win_length,
                                                 "hop_length": cfg.hop_length, "n_mels": cfg.n_mels, "fs": SR},
        "specaug": None, "specaug_conf": {},
        "normalize": cfg.normalize,
        "normalize_conf": ({"stats_file": f"{EXP_DIR}/feats_stats.npz", "norm_means": cfg.norm_means,
                            "norm_vars": cfg.norm_vars} if cfg.normalize == "global_mvn"
                           else {"norm_means": cfg.norm_means, "norm_vars": cfg.norm_vars, "eps": cfg.mvn_eps}
                           if cfg.normalize == "utterance_mvn" else {}),
        "model": "espnet_ctc", "model_conf": {"interctc_weight": 0.8, "sym_na": cfg.sym_na,
                                              "ctc_asr_only": [True] * (len(cfg.interctc_layers) + 1)},
        "preprocessor": "s2t", "preprocessor_conf": {}, "token_type": None, "bpemodel": None,
        "encoder": "e_branchformer_ctc", "encoder_conf": {
            "output_size": cfg.size, "attention_heads": cfg.heads, "attention_layer_type": "selfattn",
            "pos_enc_layer_type": "abs_pos", "rel_pos_type": "latest", "cgmlp_linear_units": cfg.cgmlp_units,
            "cgmlp_conv_kernel": cfg.cgmlp_kernel, "use_linear_after_conv": cfg.linear_after_conv,
            "gate_activation": cfg.gate_activation, "num_blocks": cfg.num_blocks, "input_layer": "conv2d8",
            "use_ffn": cfg.use_ffn, "macaron_ffn": cfg.macaron_ffn, "linear_units": cfg.linear_units,
            "positionwise_layer_type": "linear", "merge_conv_kernel": cfg.merge_kernel,
            "interctc_layer_idx": list(cfg.interctc_layers), "interctc_use_conditioning": cfg.interctc_conditioning,
            "use_cross_attention": [int(c) for c in cfg.cross_attention], "use_flash_attn": False},
        "promptencoder": "transformer", "promptencoder_conf": {
            "output_size": cfg.prompt_size, "attention_heads": cfg.prompt_heads, "linear_units": cfg.prompt_units,
            "num_blocks": cfg.prompt_blocks, "use_flash_attn": False},
        "ctc_conf": {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": None,
                     "zero_infinity": True},
    }


def random_state(state: dict[str, torch.Tensor], cfg: OwsmCtcConfig, seed: int,
                 librosa_mel: bool = True) -> dict[str, torch.Tensor]:
    """``state`` (a rebuilt OWSM model's state dict) filled with seeded random values, in place: the mel matrix
    librosa's (as ESPnet computes it; ``librosa_mel=False``: drawn too, for machines without librosa), normalisation
    statistics of log-mel scale, layer-norm gains near 1, small biases, weights scaled by their fan-in."""
    rng = np.random.default_rng(seed)
    for name in sorted(state):
        t = state[name]
        if name == "frontend.logmel.melmat" and librosa_mel:
            import librosa

            mel = librosa.filters.mel(sr=SR, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=0, fmax=SR / 2, htk=False)
            t.copy_(torch.from_numpy(mel.T.astype(np.float32)))
            continue
        values = rng.standard_normal(tuple(t.shape))
        if name == "normalize.mean":
            values = 2.0 * values - 6.0  # log-mel energies of speech sit well below zero
        elif name == "frontend.logmel.melmat":
            values = np.abs(values) / cfg.n_fft
        elif name == "normalize.std":
            values = 1.5 + 0.5 * np.abs(values)
        elif "norm" in name.split(".")[-2] and name.endswith("weight"):
            values = 1.0 + 0.1 * values
        elif t.ndim == 1:  # biases: small, so that the output follows the input rather than the biases
            values = 0.1 * values
        else:
            values = values / np.sqrt(max(1, t[0].numel() if t.ndim > 1 else 1))
        t.copy_(torch.from_numpy(values.astype(np.float64 if t.dtype == torch.float64 else np.float32)))
    return state


def write_espnet_download(folder: Path, cfg: OwsmCtcConfig, seed: int, librosa_mel: bool = True) -> Path:
    """An OWSM-CTC with seeded random weights in ESPnet's download layout (``meta.yaml`` naming the recipe's
    ``config.yaml`` and model file; the statistics file the config names): a file of the real format for tests and
    ``benchmarks/check_owsm_ctc.py``, whose ESPnet side builds it with ``Speech2TextGreedySearch``. The mel matrix
    is librosa's (as ESPnet computes it; ``librosa_mel=False``: drawn too, for machines without librosa); every other
    tensor is drawn (weights scaled by their fan-in, biases small)."""
    state = random_state(OwsmCtc(cfg).state_dict(), cfg, seed, librosa_mel)
    exp = folder / EXP_DIR
    exp.mkdir(parents=True, exist_ok=True)
    torch.save(state, exp / "valid.total_count.ave_5best.pth")
    if cfg.normalize == "global_mvn":  # ESPnet's GlobalMVN reads it at build time; the model file's buffers win
        count = 1000.0
        mean, std = state["normalize.mean"].double().numpy(), state["normalize.std"].double().numpy()
        np.savez(exp / "feats_stats.npz", count=np.array(count), sum=mean * count,
                 sum_square=(std ** 2 + mean ** 2) * count)
    (exp / "config.yaml").write_text(yaml.safe_dump(espnet_config(cfg), sort_keys=False, allow_unicode=True),
                                     encoding="utf-8")
    (folder / "meta.yaml").write_text(yaml.safe_dump({
        "files": {"s2t_model_file": f"{EXP_DIR}/valid.total_count.ave_5best.pth"},
        "yaml_files": {"s2t_train_config": f"{EXP_DIR}/config.yaml"}}), encoding="utf-8")
    return folder
