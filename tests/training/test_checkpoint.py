"""Checkpoint round trip: the rebuilt model gives identical outputs; foreign files are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from curator.training.checkpoint import CheckpointError, is_checkpoint, load_model, save_checkpoint
from curator.training.models import build_model, model_options, options_dict


def test_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    options = options_dict(model_options("bsrnn", {"num_channels": 8, "num_layers": 1}))
    model = build_model("bsrnn", options).eval()
    path = tmp_path / "exp" / "best.ckpt"
    save_checkpoint(path, model, "bsrnn", options, step=7, val_loss=0.25)
    loaded, meta = load_model(path)
    x = torch.randn(1, 8000)
    with torch.no_grad():
        assert torch.equal(model(x, 16000), loaded(x, 16000))
    assert meta["meta"] == {"step": 7, "val_loss": 0.25} and meta["model"]["options"]["num_channels"] == 8
    assert is_checkpoint(path) and not list(path.parent.glob(".*.tmp"))


def test_foreign_or_missing_files(tmp_path: Path) -> None:
    other = tmp_path / "lightning.ckpt"
    other.write_bytes(b"not a checkpoint of ours")
    assert not is_checkpoint(other)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "plain.ckpt")
    with pytest.raises(CheckpointError, match="is not an"):
        load_model(tmp_path / "plain.ckpt")


def test_same_weights_give_identical_bytes(tmp_path: Path) -> None:
    from curator.io import sha256_file

    torch.manual_seed(2)
    options = options_dict(model_options("bsrnn", {"num_channels": 8, "num_layers": 1}))
    model = build_model("bsrnn", options)
    save_checkpoint(tmp_path / "a" / "best.ckpt", model, "bsrnn", options, step=1)
    save_checkpoint(tmp_path / "b" / "best.ckpt", model, "bsrnn", options, step=1)
    assert sha256_file(tmp_path / "a" / "best.ckpt") == sha256_file(tmp_path / "b" / "best.ckpt")
