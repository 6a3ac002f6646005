"""FlowSE end to end through the CLIs: `curator train` with train.model.name=flowse, then `curator eval`."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from curator.evaluation.cli import main as eval_main
from curator.training.checkpoint import load_model
from curator.training.cli import main as train_main

TINY = ["train.model.flowse.num_channels=8", "train.model.flowse.num_layers=1",
        "train.model.flowse.decoder_channels=4", "train.model.flowse.sampler_steps=3",
        "train.model.flowse.ema_decay=0.5"]


def test_flowse_trains_and_evaluates(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "flow", "train.model.name=flowse", *TINY]) == 0
    exp = tmp_path / "models" / "flow"
    frozen = yaml.safe_load((exp / "config.yaml").read_text())
    assert frozen["params"]["train"]["model"]["name"] == "flowse"
    live = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert live["steps"] == 4 and math.isfinite(live["best_val_loss"]) and live["best_val_loss"] > 0

    model, meta = load_model(exp / "best.ckpt")
    assert meta["model"]["name"] == "flowse" and type(model).__name__ == "FlowSE"
    assert meta["model"]["options"]["sampler_steps"] == 3 and meta["model"]["options"]["num_channels"] == 8
    x = torch.randn(1, 8000)
    with torch.no_grad():
        assert torch.equal(model(x, 16000), model(x, 16000))  # the seeded sampler

    assert eval_main(["--config", str(corpus["params"]), "--ckpt", str(exp / "best.ckpt"),
                      "eval.splits=[test]", "eval.num_workers=0", "eval.metrics=[si_sdr]"]) == 0
    test = json.loads((tmp_path / "metrics" / "eval.json").read_text())["test"]
    assert test["n_utts"] == 4 and test["n_skipped"] == 0 and math.isfinite(test["metrics"]["si_sdr"]["enhanced"])
    per_utt = pd.read_parquet(tmp_path / "data" / "eval" / "flow" / "per_utt.parquet")
    assert len(per_utt) == 4 and per_utt["si_sdr"].notna().all()
