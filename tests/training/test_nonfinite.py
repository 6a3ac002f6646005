"""The native trainer skips a step whose gradients are NaN or infinite, counts it, and stops after too many in a row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from curator.training.cli import main as train_main
from curator.training.module import EnhancementModule


def _poison(monkeypatch: pytest.MonkeyPatch, bad_steps: set[int] | None) -> list[dict[str, torch.Tensor]]:
    """Make the training loss NaN at ``bad_steps`` (None: at every step); returns the weights each training step
    started from, in order."""
    seen: list[dict[str, torch.Tensor]] = []
    plain = EnhancementModule._loss

    def loss(self: EnhancementModule, model: torch.nn.Module, batch, generator=None) -> torch.Tensor:  # noqa: ANN001
        value = plain(self, model, batch, generator)
        if not self.training:
            return value
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        step = self.trainer.global_step
        return value * float("nan") if bad_steps is None or step in bad_steps else value

    monkeypatch.setattr(EnhancementModule, "_loss", loss)
    return seen


def _train(corpus: dict[str, Path], *overrides: str) -> int:
    return train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "nan", *overrides])


def test_a_nan_step_is_skipped_and_counted(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    seen = _poison(monkeypatch, {1})
    assert _train(corpus) == 0
    assert len(seen) == 4  # train.max_steps of the tiny profile

    def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
        return all(torch.equal(a[k], b[k]) for k in a)

    assert not same(seen[0], seen[1])  # a healthy step moves the weights
    assert same(seen[1], seen[2])  # the NaN step left them (and AdamW's state) as they were
    assert not same(seen[2], seen[3])  # and training went on
    assert all(v.isfinite().all() for v in seen[3].values())
    live = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert live["skipped_nonfinite_steps"] == 1 and live["steps"] == 4
    assert "step 1 (epoch 0) has NaN or infinite gradients: skipped" in capsys.readouterr().out
    ckpt = torch.load(tmp_path / "models" / "nan" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(v.isfinite().all() for v in ckpt.values())


def test_too_many_nan_steps_in_a_row_stop_training(corpus: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    seen = _poison(monkeypatch, None)
    assert _train(corpus, "train.max_nonfinite_steps=2") == 2
    assert len(seen) == 2  # stopped at the second
    err = capsys.readouterr().err
    assert "2 training steps in a row (the last, step 1) had NaN or infinite gradients" in err
    assert "train.max_nonfinite_steps = 2" in err
    assert not (tmp_path / "models" / "nan" / "best.ckpt").exists()  # nothing validated, nothing kept
