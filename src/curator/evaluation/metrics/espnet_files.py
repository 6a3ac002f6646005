"""Reading the models the official URGENT 2026 evaluation takes from ESPnet downloads (``huggingface-cli download
espnet/<model> --local-dir DIR``), without ESPnet: where the training config and the model file are, the config's
``<key>_conf`` settings checked against what a rebuild implements, and the state dict loaded weights-only with
strict key matching. Used by :mod:`.rawnet3` (SpkSim) and :mod:`.owsm_ctc` (language identification)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import yaml


def locate(path: Path, kind: str) -> tuple[Path, Path]:
    """``(config.yaml, model file)`` of an ESPnet download of a ``kind`` model (a name for messages): a folder as
    ``huggingface-cli download`` leaves it (its ``meta.yaml`` names both files), any folder holding one
    ``config.yaml`` and one ``.pth``, or the ``.pth`` itself with its ``config.yaml`` beside it."""
    if path.is_file():
        cfg = path.parent / "config.yaml"
        if not cfg.is_file():
            raise ValueError(f"{path}: no config.yaml beside the {kind} model file (ESPnet keeps the training config "
                             "next to its checkpoints)")
        return cfg, path
    if not path.is_dir():
        raise ValueError(f"{path}: no such file or folder (expected the {kind} download)")
    meta = path / "meta.yaml"
    if meta.is_file():
        info = yaml.safe_load(meta.read_text(encoding="utf-8")) or {}
        configs = [v for k, v in (info.get("yaml_files") or {}).items() if k.endswith("train_config")]
        models = [v for k, v in (info.get("files") or {}).items() if k.endswith("model_file")]
        if len(configs) == 1 and len(models) == 1:
            return path / configs[0], path / models[0]
        raise ValueError(f"{meta}: expected one yaml_files.*train_config and one files.*model_file, found "
                         f"{configs} and {models}")
    configs, models = sorted(path.rglob("config.yaml")), sorted(path.rglob("*.pth"))
    if len(configs) == 1 and len(models) == 1:
        return configs[0], models[0]
    raise ValueError(f"{path}: expected one config.yaml and one .pth under it (or a meta.yaml naming them) of the "
                     f"{kind} download, found {[str(p) for p in configs]} and {[str(p) for p in models]}")


def read_config(path: Path) -> dict[str, Any]:
    """The training config, parsed with libyaml where it is there (an OWSM config lists 50,000 tokens)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a safe loader
    if not isinstance(cfg, dict):
        raise ValueError(f"{path}: not an ESPnet training config (a mapping)")
    return cfg


def conf(cfg: dict[str, Any], key: str, allowed: Iterable[str], source: Path, model: str,
         ignored: bool = False) -> dict[str, Any]:
    """``<key>_conf`` of the config; a setting outside ``allowed`` is refused (naming ``source`` and the
    setting), as ESPnet's class refuses it, or dropped where the class takes and ignores any keyword
    (``ignored``)."""
    section = cfg.get(f"{key}_conf") or {}
    allowed = set(allowed)
    unknown = sorted(set(section) - allowed)
    if unknown and not ignored:
        raise ValueError(f"{source}: {key}_conf has settings the {model} rebuild does not implement: {unknown}")
    return {k: v for k, v in section.items() if k in allowed}


def load_state(model: torch.nn.Module, model_path: Path, cfg_path: Path, kind: str,
               dropped: tuple[str, ...] = ()) -> None:
    """Load an ESPnet model file into ``model``: weights only (no pickled code runs), entries under ``dropped``
    left out, every other key matched (ValueError naming the file and the keys otherwise)."""
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError(f"{model_path}: not a state dict ({type(state).__name__})")
    state = {k: v for k, v in state.items() if not k.startswith(dropped)} if dropped else state
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{model_path}: does not match the {kind} of {cfg_path}: missing "
                         f"{result.missing_keys[:5]}{'...' if len(result.missing_keys) > 5 else ''}, unexpected "
                         f"{result.unexpected_keys[:5]}{'...' if len(result.unexpected_keys) > 5 else ''}")
