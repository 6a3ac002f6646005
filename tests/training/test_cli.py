"""End to end on a tiny corpus: `curator train` then `curator eval`, plus the CLIs' errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from curator.evaluation.cli import main as eval_main
from curator.training.cli import main as train_main


def _train(corpus: dict[str, Path], exp: str, *overrides: str) -> int:
    return train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", exp, *overrides])


def test_train_then_eval(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _train(corpus, "tiny") == 0
    exp = tmp_path / "models" / "tiny"
    frozen = yaml.safe_load((exp / "config.yaml").read_text())
    assert frozen["exp_name"] == "tiny" and frozen["curated_list"]["n_utts"] == 8
    assert frozen["params"]["train"]["max_steps"] == 4
    # only the params the train stage lists in dvc.yaml: another section's edit must not change this output
    assert set(frozen["params"]) == {"data", "train"} and set(frozen["params"]["data"]) == {"dataset", "root"}
    live = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert live["best_val_loss"] > 0 and live["steps"] == 4 and "loss" in live["val"]
    assert (tmp_path / "metrics" / "train" / "plots" / "metrics" / "train" / "loss.tsv").is_file()
    assert not (tmp_path / "dvc.yaml").exists()  # DVCLive must never write a dvc.yaml

    # same seed, same data -> same weights
    assert _train(corpus, "again") == 0
    a = torch.load(exp / "best.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "models" / "again" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    assert eval_main(["--config", str(corpus["params"]), "--ckpt", str(exp / "best.ckpt"),
                      "eval.splits=[dev,test]", "eval.num_workers=0", "eval.metrics=[pesq,estoi,si_sdr,nisqa]"]) == 0
    summary = json.loads((tmp_path / "metrics" / "eval.json").read_text())
    assert set(summary) == {"dev", "test", "unavailable_metrics"}
    assert "nisqa.tar" in summary["unavailable_metrics"]["nisqa"]  # recorded with its reason; the run completed
    test = summary["test"]
    assert test["n_utts"] == 4 and test["n_skipped"] == 0
    assert set(test["metrics"]) == {"pesq", "estoi", "si_sdr"}
    si = test["metrics"]["si_sdr"]
    assert si["improvement"] == pytest.approx(si["enhanced"] - si["noisy"], abs=1e-5)
    assert si["ci_low"] <= si["improvement"] <= si["ci_high"] and si["n"] + si["n_dropped"] == 4
    assert si["tail_enhanced"] <= si["enhanced"]
    assert test["urgent_rank"]["official_missing"]["non_intrusive"]  # no DNSMOS here: named, not hidden
    slices = json.loads((tmp_path / "metrics" / "eval_slices.json").read_text())["test"]
    assert set(slices) == {"distortion", "augmentations", "sr", "language", "snr_bin"}
    assert set(slices["sr"]) == {"8000", "16000"}
    assert all(v["n"] > 0 for v in slices["augmentations"].values())  # one overlapping slice per flag present
    per_utt = pd.read_parquet(tmp_path / "data" / "eval" / "tiny" / "per_utt.parquet")
    assert len(per_utt) == 8 and {"split", "utt_id", "sr", "pesq", "noisy_pesq"} <= set(per_utt.columns)
    assert (tmp_path / "metrics" / "plots" / "eval" / "test_distortion.png").stat().st_size > 0
    assert "slice" in pd.read_csv(tmp_path / "metrics" / "plots" / "eval" / "slices.csv").columns


def test_train_errors_are_clear(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("utt_id\ntrain_00\nnot_in_manifest\n")
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(bad)]) == 2
    assert "'not_in_manifest'" in capsys.readouterr().err
    bad.write_text("utt_id\n")
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(bad)]) == 2
    assert "selects no utterances" in capsys.readouterr().err
    assert _train(corpus, "x", "train.max_steps=5") == 2
    assert "multiple of 'train.val_every_steps'" in capsys.readouterr().err
    assert _train(corpus, "x", "train.model.name=transformer") == 2
    assert "valid choices: bsrnn" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()  # nothing written before the inputs are valid


def test_eval_errors_are_clear(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert eval_main(["--config", str(corpus["params"]), "--ckpt", "models/none/best.ckpt"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert eval_main(["--config", str(corpus["params"]), "--ckpt", "x.ckpt", "eval.metrics=[pesq,mos]"]) == 2
    assert "'eval.metrics' = 'mos' is not valid" in capsys.readouterr().err
