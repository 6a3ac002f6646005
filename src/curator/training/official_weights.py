"""The official URGENT 2026 baselines' weights in this project's ``bsrnn`` and ``flowse``, and back.

The organisers' checkpoints are Lightning files of ``baseline_code``'s ``SEModel`` (the BSRNN baseline: ESPnet's
``BSRNNSeparator`` under ``se_model.bsrnn.bsrnn.``) or ``FlowSEModel`` (the network under ``dnn.``, its
``torch_ema`` average under the ``ema`` entry). ``bsrnn`` and ``flowse`` at their defaults compute what those
networks compute (``benchmarks/check_bsrnn_espnet.py`` and ``benchmarks/check_flowse_official.py`` copy the weights
with this module and compare the outputs at every rate), so an official checkpoint becomes one of this project's
checkpoints: ``curator import-official``, or ``train.init_from`` to fine-tune from it. Neither ESPnet nor the checkout
is needed: the file is read with ``torch.load(weights_only=True)``, its one pickled class
(``baseline_code.config.Config``, the hyper-parameters) given a stand-in that only receives the attributes.

The mapping: a band's norm, 1x1 convolutions and MLPs are stacked into this project's width groups (one tensor per
group of bands of equal width), a convolution's ``(out, in, 1)`` weight is our ``(in, out)``; the LSTMs, the RNN
blocks' norms and projections keep their shapes; FlowSE's heads order a band's outputs channel-major
(``view(B, c, f, T)``), ours bin-major, so their rows are permuted; its Fourier frequencies of ``t`` (one ``W`` per
layer) are our stacked ``t_freqs``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from curator.training.checkpoint import CheckpointError, is_checkpoint, read_checkpoint

BSRNN_PREFIX = "se_model.bsrnn.bsrnn."
"""Where ``SEModel`` (``se_model = BSRNN_SE``, whose ``bsrnn`` is ESPnet's separator, whose ``bsrnn`` is the net)
keeps the BSRNN baseline's weights."""
FLOWSE_PREFIX = "dnn."
"""Where ``FlowSEModel`` keeps its network's weights."""
CONFIG_CLASS = "baseline_code.config.Config"
"""The class an official checkpoint pickles besides tensors and containers: its hyper-parameters."""
LSTM_KEYS = tuple(f"{kind}_{gate}_l0{rev}" for rev in ("", "_reverse") for kind, gate in
                  (("weight", "ih"), ("weight", "hh"), ("bias", "ih"), ("bias", "hh")))
"""A one-layer bidirectional LSTM's weights (the same names in both projects)."""
FLOWSE_CONFIG_KEYS = ("n_fft", "hop_length", "spec_abs_exponent", "spec_factor", "sigma_min", "sigma_max", "t_eps",
                      "ema_decay")
"""Keys of the official FlowSE config that are ``flowse`` options of the same name and meaning."""
FLOWSE_FIXED = {"spec_transform_type": "exponent", "T_rev": 1.0}
"""Official FlowSE settings that ``flowse`` implements with these values only (a checkpoint with others is
refused)."""

Pair = tuple[str, "int | None", str, Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
"""(our key, index into our stacked tensor or None, official key, official -> ours, ours -> official)."""


class _OfficialConfig:
    """Stand-in for ``baseline_code.config.Config`` when unpickling: receives its attributes, runs nothing."""


def _ident(t: torch.Tensor) -> torch.Tensor:
    return t


def _conv_to_ours(t: torch.Tensor) -> torch.Tensor:
    return t[:, :, 0].T


def _conv_to_official(t: torch.Tensor) -> torch.Tensor:
    return t.T[:, :, None]


def _head_perm(width: int, per_bin: int) -> torch.Tensor:
    """Our FlowSE head's output ``f * per_bin + c`` is the official ``c * width + f`` (its ``view(B, c, f, T)``)."""
    f, c = torch.meshgrid(torch.arange(width), torch.arange(per_bin), indexing="ij")
    return (c * width + f).flatten()


def _band_split(ours: nn.Module, key: str, theirs: str) -> Iterator[Pair]:
    for gi, g in enumerate(ours.groups):
        for j, i in enumerate(g.band_list):
            yield f"{key}.groups.{gi}.in_norm.gamma", j, f"{theirs}.norm.{i}.weight", _ident, _ident
            yield f"{key}.groups.{gi}.in_norm.beta", j, f"{theirs}.norm.{i}.bias", _ident, _ident
            yield f"{key}.groups.{gi}.in_proj.weight", j, f"{theirs}.fc.{i}.weight", _conv_to_ours, _conv_to_official
            yield f"{key}.groups.{gi}.in_proj.bias", j, f"{theirs}.fc.{i}.bias", _ident, _ident


def _rnns(layers: int) -> Iterator[Pair]:
    for i in range(layers):
        for ours, theirs in (("time_rnns", "time"), ("band_rnns", "freq")):
            key = f"rnns.{ours}.{i}"
            for part in ("weight", "bias"):
                yield f"{key}.norm.{part}", None, f"norm_{theirs}.{i}.{part}", _ident, _ident
                yield f"{key}.proj.{part}", None, f"fc_{theirs}.{i}.{part}", _ident, _ident
            for k in LSTM_KEYS:
                yield f"{key}.rnn.{k}", None, f"rnn_{theirs}.{i}.{k}", _ident, _ident


def bsrnn_pairs(model: nn.Module) -> Iterator[Pair]:
    """Every weight of our ``bsrnn`` with its ESPnet ``BSRNN`` name (relative to the net)."""
    yield from _band_split(model.band_split, "band_split", "band_split")
    yield from _rnns(len(model.rnns.time_rnns))
    heads = [("mask", "mask_decoder.mlp_mask")]
    if model.residual is not None:
        heads.append(("residual", "mask_decoder.mlp_residual"))
    for head, theirs in heads:
        for gi, g in enumerate(getattr(model, head).groups):
            key = f"{head}.groups.{gi}"
            for j, i in enumerate(g.band_list):
                yield f"{key}.out_norm.gamma", j, f"{theirs}.{i}.0.weight", _ident, _ident
                yield f"{key}.out_norm.beta", j, f"{theirs}.{i}.0.bias", _ident, _ident
                for ours, k in (("out_hidden", 1), ("out_proj", 3)):
                    yield f"{key}.{ours}.weight", j, f"{theirs}.{i}.{k}.weight", _conv_to_ours, _conv_to_official
                    yield f"{key}.{ours}.bias", j, f"{theirs}.{i}.{k}.bias", _ident, _ident


def flowse_pairs(model: nn.Module) -> Iterator[Pair]:
    """Every weight of our ``flowse`` with its official ``BSRNN`` (``baseline_code.models.bsrnn_flowse``) name."""
    yield from _band_split(model.split_x, "split_x", "band_split_x")
    yield from _band_split(model.split_y, "split_y", "band_split_y")
    yield "condition.weight", None, "condition_fc.weight", _ident, _ident
    yield "condition.bias", None, "condition_fc.bias", _ident, _ident
    layers = len(model.rnns.time_rnns)
    for i in range(layers):
        yield "t_freqs", i, f"t_cond.{i}.W", _ident, _ident
    yield from _rnns(layers)
    for head in ("mask", "residual"):
        theirs = f"grad_decoder.mlp_{head}"
        per_bin = getattr(model, head).per_bin
        for gi, g in enumerate(getattr(model, head).groups):
            key, perm = f"{head}.groups.{gi}", _head_perm(g.width, per_bin)
            back = torch.argsort(perm)
            for j, i in enumerate(g.band_list):
                yield f"{key}.out_norm.gamma", j, f"{theirs}.{i}.0.weight", _ident, _ident
                yield f"{key}.out_norm.beta", j, f"{theirs}.{i}.0.bias", _ident, _ident
                yield (f"{key}.out_proj.weight", j, f"{theirs}.{i}.1.weight", lambda t, p=perm: t[p, :, 0].T,
                       lambda t, b=back: t.T[b, :, None])
                yield f"{key}.out_proj.bias", j, f"{theirs}.{i}.1.bias", lambda t, p=perm: t[p], lambda t, b=back: t[b]
        for part in ("weight", "bias"):
            yield f"{head}_conv.{part}", None, f"grad_decoder.conv_after_{head}.0.{part}", _ident, _ident


PAIRS = {"bsrnn": bsrnn_pairs, "flowse": flowse_pairs}


def official_to_ours(official: Mapping[str, torch.Tensor], model: nn.Module, name: str,
                     prefix: str = "") -> dict[str, torch.Tensor]:
    """The official network's weights (keys ``prefix`` + its names) as ``model``'s state dict; CheckpointError
    naming the weights that one side has and the other lacks."""
    pairs = list(PAIRS[name](model))
    wanted = {prefix + theirs for _, _, theirs, _, _ in pairs}
    have = {k for k in official if k.startswith(prefix)}
    if wanted != have:
        missing, extra = sorted(wanted - have), sorted(have - wanted)
        raise CheckpointError(f"the official {name} weights do not fit a {name} of these options: missing "
                              f"{len(missing)} ({', '.join(missing[:3])}), unexpected {len(extra)} "
                              f"({', '.join(extra[:3])})")
    parts: dict[str, dict[int | None, torch.Tensor]] = {}
    for ours, j, theirs, to_ours, _ in pairs:
        parts.setdefault(ours, {})[j] = to_ours(official[prefix + theirs].detach().float())
    # a tensor of ours is either one official tensor (index None) or a stack of per-band / per-layer ones
    return {k: v[None] if None in v else torch.stack([v[j] for j in sorted(v)]) for k, v in parts.items()}


def ours_to_official(state: Mapping[str, torch.Tensor], model: nn.Module, name: str,
                     prefix: str = "") -> dict[str, torch.Tensor]:
    """The inverse of :func:`official_to_ours`: ``model``'s weights under the official names."""
    return {prefix + theirs: to_theirs(state[ours] if j is None else state[ours][j]).contiguous()
            for ours, j, theirs, _, to_theirs in PAIRS[name](model)}


# ------------------------------------------------------------------------------------------- checkpoints


def read_official_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """An official Lightning checkpoint, read with weights-only unpickling (its hyper-parameters object becomes a
    :class:`_OfficialConfig` holding the same attributes); CheckpointError if missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"official checkpoint '{path}' does not exist")
    try:
        with torch.serialization.safe_globals([(_OfficialConfig, CONFIG_CLASS)]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling arbitrary bytes raises anything
        raise CheckpointError(f"'{path}' cannot be read as an official baseline checkpoint with weights-only "
                              f"loading: {type(exc).__name__}: {exc}") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("state_dict"), dict):
        raise CheckpointError(f"'{path}' is not a Lightning checkpoint (no state_dict)")
    return payload


def official_kind(state: Mapping[str, Any]) -> str:
    """``bsrnn`` (the BSRNN baseline's ``SEModel``) or ``flowse`` (``FlowSEModel``), from the weights' names."""
    if any(k.startswith(BSRNN_PREFIX) for k in state):
        return "bsrnn"
    if any(k.startswith(FLOWSE_PREFIX + "band_split_x.") for k in state):
        return "flowse"
    raise CheckpointError(f"no official BSRNN ({BSRNN_PREFIX}*) or FlowSE ({FLOWSE_PREFIX}band_split_x.*) weights "
                          f"among the checkpoint's {len(state)} tensors (first: {next(iter(state), None)})")


def _count(state: Mapping[str, Any], pattern: str) -> int:
    rx = re.compile(pattern)
    return len({m.group(1) for k in state if (m := rx.fullmatch(k))})


def official_options(state: Mapping[str, torch.Tensor], kind: str, cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Our model's options for the official weights: the sizes read from the tensors, FlowSE's STFT and flow
    settings from the checkpoint's hyper-parameters (the rest are our defaults, which are the official ones)."""
    if kind == "bsrnn":
        p = BSRNN_PREFIX
        channels = int(state[p + "band_split.fc.0.weight"].shape[0])
        return {"num_channels": channels,
                "num_layers": _count(state, re.escape(p) + r"norm_time\.(\d+)\.weight"),
                "rnn_hidden_factor": int(state[p + "rnn_time.0.weight_hh_l0"].shape[1]) // channels,
                "mask_hidden_factor": int(state[p + "mask_decoder.mlp_mask.0.1.weight"].shape[0]) // channels,
                "residual_mask": any(k.startswith(p + "mask_decoder.mlp_residual.") for k in state)}
    p = FLOWSE_PREFIX
    for key, value in FLOWSE_FIXED.items():
        if key in cfg and cfg[key] != value:
            raise CheckpointError(f"the official FlowSE checkpoint has {key} = {cfg[key]!r}; flowse implements "
                                  f"{key} = {value!r} only")
    channels = int(state[p + "band_split_x.fc.0.weight"].shape[0])
    options = {"num_channels": channels,
               "num_layers": _count(state, re.escape(p) + r"norm_time\.(\d+)\.weight"),
               "rnn_hidden_factor": int(state[p + "rnn_time.0.weight_hh_l0"].shape[1]) // channels,
               "decoder_channels": int(state[p + "grad_decoder.conv_after_mask.0.weight"].shape[1])}
    options |= {k: cfg[k] for k in FLOWSE_CONFIG_KEYS if k in cfg}
    return options


def import_official(path: str | os.PathLike[str], weights: str = "ema") -> tuple[nn.Module, str, dict[str, Any],
                                                                                 dict[str, Any]]:
    """An official checkpoint as (our model in eval mode, its name, its options, what was imported).

    ``weights``: for FlowSE, ``ema`` takes the moving average the official inference runs (``raw``: the trained
    weights); the BSRNN baseline has no average and ignores it.
    """
    from curator.training.models import build_model, model_options, options_dict

    if weights not in ("ema", "raw"):
        raise ValueError(f"weights must be 'ema' or 'raw', not {weights!r}")
    payload = read_official_checkpoint(path)
    state = payload["state_dict"]
    kind = official_kind(state)
    hparams = payload.get("hyper_parameters") or {}
    cfg = vars(hparams.get("cfg")) if isinstance(hparams.get("cfg"), _OfficialConfig) else {}
    options = options_dict(model_options(kind, official_options(state, kind, cfg)))
    model = build_model(kind, options, f"official checkpoint '{path}'")
    used = "raw"
    if kind == "flowse" and weights == "ema":
        state = dict(state)
        state.update(_ema_weights(payload, state, path))
        used = "ema"
    prefix = BSRNN_PREFIX if kind == "bsrnn" else FLOWSE_PREFIX
    model.load_state_dict(official_to_ours(state, model, kind, prefix))
    meta = {"official_kind": kind, "official_weights": used, "official_step": payload.get("global_step"),
            "official_epoch": payload.get("epoch")}
    return model.eval(), kind, options, meta


def _ema_weights(payload: Mapping[str, Any], state: Mapping[str, torch.Tensor], path: Any) -> dict[str, torch.Tensor]:
    """FlowSE's ``torch_ema`` average: its ``shadow_params`` follow the module's parameters, which are the
    checkpoint's ``dnn.`` tensors in order (the encoder, decoder and losses hold none)."""
    ema = payload.get("ema")
    if not isinstance(ema, dict) or not isinstance(ema.get("shadow_params"), list):
        raise CheckpointError(f"'{path}' holds no EMA of the weights (its 'ema' entry); import it with weights 'raw' "
                              "(`curator import-official --weights raw`) to take the trained weights")
    names = [k for k in state if k.startswith(FLOWSE_PREFIX)]
    shadow = ema["shadow_params"]
    if len(shadow) != len(names) or any(s.shape != state[n].shape for s, n in zip(shadow, names, strict=False)):
        raise CheckpointError(f"'{path}': its EMA holds {len(shadow)} tensors that do not match its {len(names)} "
                              "network weights in order and shape")
    return dict(zip(names, shadow, strict=True))


def initial_weights(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any], dict[str, torch.Tensor], str]:
    """(model name, options, state dict, what the file is) of this project's checkpoint or an official baseline one
    (FlowSE: its EMA weights, which the official inference runs), for ``train.init_from``."""
    if is_checkpoint(path):
        payload = read_checkpoint(path)
        return payload["model"]["name"], payload["model"]["options"], payload["state_dict"], "this project's checkpoint"
    model, name, options, meta = import_official(path)
    return name, options, model.state_dict(), f"official {name} checkpoint, {meta['official_weights']} weights"


# ------------------------------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator import-official", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Turn an official URGENT 2026 baseline checkpoint (BSRNN or FlowSE, Lightning) into this "
                    "project's checkpoint: `curator enhance`/`curator eval --ckpt` then run it natively (no "
                    "checkout, no ESPnet), and train.init_from fine-tunes from it.",
        epilog="example: curator import-official exp/baseline/best.ckpt --out models/official_bsrnn/best.ckpt")
    ap.add_argument("ckpt", help="the official Lightning checkpoint (read with weights-only loading)")
    ap.add_argument("--out", required=True, help="this project's checkpoint to write (e.g. models/<exp>/best.ckpt)")
    ap.add_argument("--weights", choices=("ema", "raw"), default="ema",
                    help="FlowSE: the moving average the official inference runs (ema, default) or the trained "
                         "weights (raw); the BSRNN baseline has no average")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    from curator.io import sha256_file
    from curator.training.checkpoint import save_checkpoint

    args = build_parser().parse_args(argv)
    try:
        model, name, options, meta = import_official(args.ckpt, args.weights)
    except CheckpointError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    save_checkpoint(args.out, model, name, options, imported_from=str(args.ckpt), sha256=sha256_file(args.ckpt),
                    **meta)
    n_params = sum(t.numel() for t in model.parameters())
    print(f"import-official: {args.ckpt} ({name}, {options['num_channels']} x {options['num_layers']}, "
          f"{n_params:,} parameters, {meta['official_weights']} weights, official step {meta['official_step']}) "
          f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
