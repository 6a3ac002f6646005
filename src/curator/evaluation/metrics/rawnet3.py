"""RawNet3 speaker embeddings, the official URGENT 2026 SpkSim model, from a local ESPnet download.

The official script (``evaluation_metrics/calculate_speaker_similarity.py``, ``espnet==202412``) embeds reference
and estimate at 16 kHz with ``Speech2Embedding.from_pretrained("espnet/voxcelebs12_rawnet3")`` and scores their
cosine. ESPnet itself is not a dependency here: its wheel pins packages this project needs newer
(``setuptools<74``, ``importlib-metadata<5``, ``sentencepiece==0.2.0``) and pulls in training and TTS stacks. The
network is small, so it is rebuilt here in torch from the download's ``config.yaml``:

- frontend (ESPnet ``asteroid_frontend``): first-order pre-emphasis after one sample of reflect padding, instance
  norm, a parameterised sinc filterbank (asteroid-filterbanks' ``ParamSincFB``, the package and version ESPnet
  uses), log magnitude, per-channel mean over time removed;
- encoder (``rawnet3``): three Res2Net bottleneck blocks (conv, ReLU, then batch norm; dilations 2, 3, 4; max
  pooling by 5 and 3 after the first two; alpha feature-map scaling), a 1x1 conv over the concatenation of the
  three block outputs (the first max-pooled by 3), ReLU;
- pooling (``chn_attn_stat``, as in ESPnet 202412): channel-wise attentive mean and standard deviation, the
  attention conditioned on the utterance's mean and (unbiased) standard deviation;
- projector (``rawnet3``): batch norm, linear.

Module and parameter names follow the ESPnet state dict, so the model file loads with ``weights_only=True`` and
strict key matching (the training loss head, ``loss.*``, is dropped). A graph this module does not implement (an
other frontend, encoder, pooling or projector in the config) is refused with the file and the setting named.
Equality with ESPnet 202412's own modules: ``benchmarks/check_rawnet3.py`` (needs an ESPnet install of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from curator.evaluation.metrics import espnet_files

SR = 16000
SUPPORTED = {"frontend": "asteroid_frontend", "encoder": "rawnet3", "pooling": "chn_attn_stat",
             "projector": "rawnet3"}
"""The ESPnet class choices this module rebuilds (those of espnet/voxcelebs12_rawnet3)."""
DROPPED_PREFIXES = ("loss.",)
"""State-dict entries of the training head, not part of the embedding network."""
STAT_CLAMP = (1e-4, 1e4)
"""ESPnet's clamp of the variances under the square roots of the attentive pooling."""


@dataclass(frozen=True)
class RawNet3Config:
    """The hyperparameters of the network, with ESPnet's class defaults where the config leaves them out."""

    sinc_filters: int = 256
    sinc_kernel_size: int = 251
    sinc_stride: int = 16
    preemph_coef: float = 0.97
    log_term: float = 1e-6
    model_scale: int = 8
    ndim: int = 1024
    output_size: int = 1536
    embedding_size: int = 192
    attention_channels: int = 128


class SincFrontend(nn.Module):
    """Raw waveform (B, T) to log sinc-filterbank magnitudes (B, filters, frames), mean over time removed."""

    def __init__(self, cfg: RawNet3Config) -> None:
        super().__init__()
        from asteroid_filterbanks import Encoder, ParamSincFB

        # pre-emphasis y[n] = x[n] - c x[n-1] as a cross-correlation kernel
        self.register_buffer("flipped_filter", torch.tensor([[[-cfg.preemph_coef, 1.0]]]))
        self.norm = nn.InstanceNorm1d(1, eps=1e-4, affine=True)
        self.conv = Encoder(ParamSincFB(cfg.sinc_filters, cfg.sinc_kernel_size, stride=cfg.sinc_stride))
        self.log_term = cfg.log_term

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(wav[:, None, :], (1, 0), mode="reflect")
        x = self.norm(nn.functional.conv1d(x, self.flipped_filter))
        x = torch.log(self.conv(x).abs() + self.log_term)
        return x - x.mean(dim=-1, keepdim=True)


class AlphaFeatureMapScaling(nn.Module):
    """``(x + alpha) * sigmoid(fc(mean_t x))`` per channel (RawNet2's AFMS)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(channels, 1))
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.fc(x.mean(dim=-1)))
        return (x + self.alpha) * gate[..., None]


class Res2Block(nn.Module):
    """Res2Net bottleneck: 1x1 conv, ``scale - 1`` dilated convs over hierarchical channel groups (the last group
    passes through), 1x1 conv, residual, optional max pooling, AFMS. Each conv is followed by ReLU, then batch norm."""

    def __init__(self, inplanes: int, planes: int, dilation: int, scale: int, pool: int | None,
                 kernel_size: int = 3) -> None:
        super().__init__()
        width = planes // scale
        self.width, self.nums = width, scale - 1
        self.conv1 = nn.Conv1d(inplanes, width * scale, kernel_size=1)
        self.bn1 = nn.BatchNorm1d(width * scale)
        pad = (kernel_size // 2) * dilation
        self.convs = nn.ModuleList(nn.Conv1d(width, width, kernel_size, dilation=dilation, padding=pad)
                                   for _ in range(self.nums))
        self.bns = nn.ModuleList(nn.BatchNorm1d(width) for _ in range(self.nums))
        self.conv3 = nn.Conv1d(width * scale, planes, kernel_size=1)
        self.bn3 = nn.BatchNorm1d(planes)
        # ESPnet wraps the projection shortcut in a Sequential: its weight is stored as ``residual.0.weight``
        self.residual = (nn.Sequential(nn.Conv1d(inplanes, planes, kernel_size=1, bias=False))
                         if inplanes != planes else nn.Identity())
        self.mp = nn.MaxPool1d(pool) if pool else None
        self.afms = AlphaFeatureMapScaling(planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.residual(x)
        groups = torch.split(self.bn1(torch.relu(self.conv1(x))), self.width, dim=1)
        outs, carry = [], None
        for i, (conv, bn) in enumerate(zip(self.convs, self.bns, strict=True)):
            carry = groups[i] if i == 0 else carry + groups[i]
            carry = bn(torch.relu(conv(carry)))
            outs.append(carry)
        outs.append(groups[self.nums])
        out = self.bn3(torch.relu(self.conv3(torch.cat(outs, dim=1)))) + shortcut
        if self.mp is not None:
            out = self.mp(out)
        return self.afms(out)


class RawNet3Encoder(nn.Module):
    """Frame-level features (B, output_size, frames / 15) from the frontend's (B, filters, frames)."""

    def __init__(self, cfg: RawNet3Config) -> None:
        super().__init__()
        self.layer1 = Res2Block(cfg.sinc_filters, cfg.ndim, dilation=2, scale=cfg.model_scale, pool=5)
        self.layer2 = Res2Block(cfg.ndim, cfg.ndim, dilation=3, scale=cfg.model_scale, pool=3)
        self.layer3 = Res2Block(cfg.ndim, cfg.ndim, dilation=4, scale=cfg.model_scale, pool=None)
        self.layer4 = nn.Conv1d(3 * cfg.ndim, cfg.output_size, kernel_size=1)
        self.mp3 = nn.MaxPool1d(3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.layer1(x)
        x1p = self.mp3(x1)
        x2 = self.layer2(x1)
        x3 = self.layer3(x1p + x2)
        return torch.relu(self.layer4(torch.cat((x1p, x2, x3), dim=1)))


class AttentiveStatsPooling(nn.Module):
    """Channel-wise attentive mean and standard deviation over time (B, 2C) of (B, C, T)."""

    def __init__(self, channels: int, attention_channels: int) -> None:
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(3 * channels, attention_channels, kernel_size=1), nn.ReLU(),
                                       nn.BatchNorm1d(attention_channels),
                                       nn.Conv1d(attention_channels, channels, kernel_size=1), nn.Softmax(dim=2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = x.shape[-1]
        mean = x.mean(dim=2, keepdim=True)
        std = x.var(dim=2, keepdim=True, unbiased=True).clamp(*STAT_CLAMP).sqrt()
        w = self.attention(torch.cat((x, mean.expand(-1, -1, frames), std.expand(-1, -1, frames)), dim=1))
        mu = (x * w).sum(dim=2)
        sg = ((x * x * w).sum(dim=2) - mu * mu).clamp(*STAT_CLAMP).sqrt()
        return torch.cat((mu, sg), dim=1)


class Projector(nn.Module):
    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_features)
        self.fc = nn.Linear(in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(x))


class RawNet3(nn.Module):
    """Waveform (B, T) at 16 kHz to speaker embeddings (B, embedding_size), in eval mode."""

    def __init__(self, cfg: RawNet3Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = SincFrontend(cfg)
        self.encoder = RawNet3Encoder(cfg)
        self.pooling = AttentiveStatsPooling(cfg.output_size, cfg.attention_channels)
        self.projector = Projector(2 * cfg.output_size, cfg.embedding_size)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.projector(self.pooling(self.encoder(self.frontend(wav))))


def _conf(cfg: dict[str, Any], key: str, allowed: set[str], source: Path, ignored: bool = False
          ) -> dict[str, Any]:
    return espnet_files.conf(cfg, key, allowed, source, "RawNet3", ignored)


def config_from_espnet(cfg: dict[str, Any], source: Path) -> RawNet3Config:
    """The network's hyperparameters from an ESPnet speaker-task ``config.yaml``; ValueError naming ``source``
    for a model of another kind."""
    defaults = {"pooling": "chn_attn_stat", "projector": "rawnet3"}  # ESPnet's speaker task defaults
    supported = ", ".join(f"{k}: {v}" for k, v in SUPPORTED.items())
    for key, want in SUPPORTED.items():
        got = cfg.get(key, defaults.get(key))
        if got != want:
            raise ValueError(f"{source}: {key} is {got!r}; only ESPnet's RawNet3 ({supported}, as "
                             "espnet/voxcelebs12_rawnet3) can be loaded")
    if cfg.get("normalize"):
        raise ValueError(f"{source}: normalize is {cfg['normalize']!r}; the RawNet3 rebuild has no feature "
                         "normalisation between frontend and encoder")
    front = _conf(cfg, "frontend", {"sinc_filters", "sinc_kernel_size", "sinc_stride", "preemph_coef", "log_term"},
                  source)
    enc = _conf(cfg, "encoder", {"block", "model_scale", "ndim", "output_size"}, source, ignored=True)
    if enc.get("block", "Bottle2neck") != "Bottle2neck":
        raise ValueError(f"{source}: encoder_conf.block is {enc['block']!r}; only Bottle2neck is implemented")
    _conf(cfg, "pooling", set(), source)
    proj = _conf(cfg, "projector", {"output_size", "input_size"}, source)
    base = RawNet3Config()
    out = RawNet3Config(**{k: type(getattr(base, k))(v) for k, v in {**front, **enc}.items() if k != "block"},
                        embedding_size=int(proj.get("output_size", base.embedding_size)))
    if "input_size" in proj and int(proj["input_size"]) != 2 * out.output_size:
        raise ValueError(f"{source}: projector_conf.input_size {proj['input_size']} is not twice the encoder's "
                         f"output_size {out.output_size}")
    return out


def locate(path: Path) -> tuple[Path, Path]:
    """``(config.yaml, model file)`` of a RawNet3 download (``huggingface-cli download espnet/voxcelebs12_rawnet3
    --local-dir DIR``): see :func:`.espnet_files.locate`."""
    return espnet_files.locate(path, "RawNet3")


def load_rawnet3(path: str | Path, device: str = "cpu") -> RawNet3:
    """The RawNet3 of an ESPnet download (see :func:`locate`) in eval mode on ``device``."""
    cfg_path, model_path = locate(Path(path))
    model = RawNet3(config_from_espnet(espnet_files.read_config(cfg_path), cfg_path))
    espnet_files.load_state(model, model_path, cfg_path, "RawNet3", DROPPED_PREFIXES)
    return model.eval().to(device)


ENCODER_POOLING = 5 * 3
"""Frontend frames per encoder frame (max pooling by 5, then by 3)."""
MIN_FRAMES = 2
"""Encoder frames the pooling's unbiased variance needs; with one, ESPnet's embedding is NaN."""


def min_samples(cfg: RawNet3Config) -> int:
    """The shortest input (samples at 16 kHz) that leaves ``MIN_FRAMES`` encoder frames."""
    return cfg.sinc_kernel_size + (ENCODER_POOLING * MIN_FRAMES - 1) * cfg.sinc_stride


def embed(model: RawNet3, x: np.ndarray, device: str = "cpu") -> np.ndarray:
    """The float32 embedding of one 16 kHz signal, as ``Speech2Embedding`` computes it (the whole signal in one
    pass, no length mask). A signal shorter than :func:`min_samples` gets NaNs, as ESPnet's own embedding of it
    is (or its encoder fails), so the row counts as failed rather than scored."""
    if len(x) < min_samples(model.cfg):
        return np.full(model.cfg.embedding_size, np.nan, np.float32)
    with torch.inference_mode():
        return model(torch.as_tensor(np.asarray(x, np.float32), device=device)[None])[0].float().cpu().numpy()


EXP_DIR = "exp/spk_train_rawnet3_raw_sp"
"""Where ESPnet's speaker recipe leaves the training config and checkpoints, relative to the download."""


def write_espnet_download(folder: Path, cfg: RawNet3Config, seed: int, spk_num: int = 4) -> Path:
    """A RawNet3 with seeded random weights in ESPnet's download layout (``meta.yaml`` naming the recipe's
    ``config.yaml`` and a model file that holds an AAM-softmax head of ``spk_num`` speakers too): a file of the real
    format for tests and ``benchmarks/check_rawnet3.py``, whose ESPnet side builds it with ``Speech2Embedding``.
    Batch-norm statistics and AFMS scales are drawn too, so that every stored tensor matters."""
    model = RawNet3(cfg)
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name in sorted(state):
        t = state[name]
        if not t.is_floating_point() or name.startswith(("frontend.conv.", "frontend.flipped_filter")):
            continue  # the sinc filterbank's band edges and window keep their mel-spaced initial values
        values = rng.standard_normal(tuple(t.shape)).astype(np.float32)
        if name.endswith("running_var"):
            values = 0.5 + np.abs(values)
        elif name.endswith(("bn1.weight", "bn3.weight", "afms.alpha", "norm.weight")) or ".bns." in name:
            values = 1.0 + 0.1 * values
        else:
            values = values / np.sqrt(max(1, t[0].numel() if t.ndim > 1 else 1))
        t.copy_(torch.from_numpy(values))
    state["loss.weight"] = torch.from_numpy(rng.standard_normal((spk_num, cfg.embedding_size)).astype(np.float32))
    exp = folder / EXP_DIR
    exp.mkdir(parents=True, exist_ok=True)
    torch.save(state, exp / "valid.eer.best.pth")
    config = {"frontend": "asteroid_frontend", "frontend_conf": {
                  "sinc_filters": cfg.sinc_filters, "sinc_kernel_size": cfg.sinc_kernel_size,
                  "sinc_stride": cfg.sinc_stride, "preemph_coef": cfg.preemph_coef, "log_term": cfg.log_term},
              "specaug": None, "specaug_conf": {}, "normalize": None, "normalize_conf": {},
              "encoder": "rawnet3", "encoder_conf": {"model_scale": cfg.model_scale, "ndim": cfg.ndim,
                                                     "output_size": cfg.output_size},
              "pooling": "chn_attn_stat", "pooling_conf": {},
              "projector": "rawnet3", "projector_conf": {"output_size": cfg.embedding_size},
              "loss": "aamsoftmax", "loss_conf": {"margin": 0.3, "scale": 15}, "spk_num": spk_num,
              "input_size": None, "init": None, "model_conf": {}}
    (exp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    (folder / "meta.yaml").write_text(yaml.safe_dump({
        "files": {"spk_model_file": f"{EXP_DIR}/valid.eer.best.pth"},
        "yaml_files": {"spk_train_config": f"{EXP_DIR}/config.yaml"}}), encoding="utf-8")
    return folder
