"""Self-describing enhancement checkpoints: model name + options + weights (+ step and validation loss).

Evaluation rebuilds the model from the checkpoint alone, without params.yaml. Files are written atomically and
loaded with ``weights_only=True`` (plain tensors and containers, no pickled code).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from curator.io import atomic_path
from curator.training.models import build_model

FORMAT = "urgent-curator-enhancer/1"


class CheckpointError(ValueError):
    """A checkpoint is missing or not in this project's format."""


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module, name: str, options: dict[str, Any],
                    **meta: Any) -> None:
    """Atomically write ``model``'s weights with what is needed to rebuild it; ``meta`` adds e.g. step."""
    payload = {"format": FORMAT, "model": {"name": name, "options": options},
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "meta": meta}
    # through a file object: torch names the zip's root folder after a path's stem, and the temporary file's
    # random name would make identical weights give different bytes (and DVC hashes)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(payload, f)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint mapping; CheckpointError if the file is missing or foreign."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist; run the train stage (`dvc repro train`)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unpickling arbitrary bytes raises anything (IndexError, KeyError, ...)
        raise CheckpointError(f"'{path}' cannot be read as an {FORMAT} checkpoint: {type(exc).__name__}: {exc}"
                              ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not an {FORMAT} checkpoint")
    return payload


def load_model(path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a checkpoint in eval mode; returns (model, checkpoint mapping without weights)."""
    payload = read_checkpoint(path)
    model = build_model(payload["model"]["name"], payload["model"]["options"], f"checkpoint '{path}' model options")
    model.load_state_dict(payload.pop("state_dict"))
    return model.eval(), payload


def is_checkpoint(path: str | os.PathLike[str]) -> bool:
    """True for this project's checkpoint format (False for e.g. an official Lightning checkpoint)."""
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True
