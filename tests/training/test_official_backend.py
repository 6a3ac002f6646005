"""The official backend against a real checkout of urgent-challenge/urgent2026_challenge_track1 (issue 13, item 5).

The end-to-end tests train the official BSRNN baseline and its FlowSE model (``conf/models/BSRNN_flowse.yaml``) for
a few steps on CPU from a copy of the checkout's own config, then enhance with its own inference script; they are
skipped only when the checkout or its interpreter is absent:
``CURATOR_OFFICIAL_CHECKOUT`` (default ``third_party/urgent2026_challenge_track1``) and ``CURATOR_OFFICIAL_PYTHON``
(default ``<checkout>/.venv/bin/python``); see third_party/README.md for building both offline. The other tests
check the pieces (interval scaling, speech-free rows, the config copy and its overrides, checkpoint
picking) without a checkout.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from curator.training.backends.official import (
    SAFE_GLOBALS,
    OfficialBaselineError,
    best_official_checkpoint,
    official_batches,
    official_config,
    scaled_interval,
    split_speech_free,
    write_lists,
)

REPO = Path(__file__).resolve().parents[2]
# relative values are read from the folder pytest starts in (third_party/README.md's command gives them relative):
# the end-to-end tests then work in a temporary folder
CHECKOUT = Path(os.path.abspath(os.environ.get("CURATOR_OFFICIAL_CHECKOUT",
                                               REPO / "third_party" / "urgent2026_challenge_track1")))
PYTHON = os.environ.get("CURATOR_OFFICIAL_PYTHON", str(CHECKOUT / ".venv" / "bin" / "python"))
PYTHON = os.path.abspath(PYTHON) if os.sep in PYTHON else PYTHON
# a few steps of a tiny model: 1 epoch of 3 batches of 2 utterances, 8 channels x 1 layer (official 196 x 6)
TINY = {"num_train_epochs": 1, "batch_size": 2, "num_worker": 1, "model_configs": {"num_channel": 8, "num_layer": 1}}


def _enhances_the_test_split(corpus: dict[str, Path], best: Path, overrides: list[str], tmp_path: Path) -> None:
    """``curator eval`` with the official checkpoint scores all 4 test utterances, and the output is not the input."""
    from curator.evaluation.cli import main as eval_main

    assert eval_main(["--config", str(corpus["params"]), "--ckpt", str(best), "eval.num_workers=0",
                      "eval.metrics=[si_sdr]", "eval.splits=[test]", *overrides]) == 0
    test = json.loads((tmp_path / "metrics" / "eval.json").read_text())["test"]
    si_sdr = test["metrics"]["si_sdr"]
    assert si_sdr["n"] == 4 and test["n_skipped"] == 0
    assert abs(si_sdr["enhanced"] - si_sdr["noisy"]) > 1.0


def _official_present() -> str | None:
    """Why the real checkout cannot be used (absent checkout or interpreter), or None."""
    missing = [f for f in ("baseline_code/train_se.py", "baseline_code/inference.py") if not (CHECKOUT / f).is_file()]
    if missing:
        return f"no official checkout at {CHECKOUT} (set CURATOR_OFFICIAL_CHECKOUT; see third_party/README.md)"
    if shutil.which(PYTHON) is None:
        return f"no interpreter for the official checkout at {PYTHON} (set CURATOR_OFFICIAL_PYTHON)"
    return None


def test_batches_follow_the_official_sampler() -> None:
    rates = [8000] * 5 + [16000] * 3
    assert official_batches(rates, 2) == 2 + 1  # one rate per batch, incomplete batches dropped
    assert official_batches(rates, 4) == 1
    assert official_batches(rates, 2, world_size=2) == 1  # rank 1 gets 8 kHz rows 1, 3 and 16 kHz row 1 only
    assert official_batches([16000], 2) == 0


def test_interval_is_scaled_to_the_curated_set() -> None:
    assert scaled_interval(5000, 3, 1) == 1  # a checkpoint needs a validation before it: at most half the run
    assert scaled_interval(5000, 3, 2) == 3  # at most one epoch (Lightning refuses more)
    assert scaled_interval(5000, 40, 80) == 40
    assert scaled_interval(7, 40, 80) == 7  # a configured interval that fits is kept
    with pytest.raises(OfficialBaselineError, match="two"):
        scaled_interval(5000, 1, 1)


def test_config_copy_sets_lists_interval_and_refuses_forced_overrides(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"val_check_interval": 5000, "batch_size": 4, "num_train_epochs": 80, "resume": True,
            "model_configs": {"num_channel": 196, "num_layer": 6}}
    cfg, info = official_config(base, TINY, tmp_path / "tr", tmp_path / "dv", [8000] * 4 + [16000] * 3,
                                [8000, 8000, 16000, 16000], seed=3, device="cpu")
    assert cfg["resume"] is False and cfg["train_set_dynamic_mixing"] is False and cfg["seed"] == 3
    assert cfg["train_set_path"] == str(tmp_path / "tr") and cfg["model_configs"] == TINY["model_configs"]
    assert (cfg["val_check_interval"], info["train_batches_per_epoch"], info["val_batches"]) == (1, 3, 2)
    assert info["configured_val_check_interval"] == 5000 and base["resume"] is True  # the original is untouched
    with pytest.raises(OfficialBaselineError, match="resume"):
        official_config(base, {"resume": True}, tmp_path, tmp_path, [8000] * 4, [8000] * 4, seed=0, device="cpu")
    with pytest.raises(OfficialBaselineError, match="num_worker >= 1"):
        official_config(base, {**TINY, "num_worker": 0}, tmp_path, tmp_path, [8000] * 4, [8000] * 4, seed=0,
                        device="cpu")
    with pytest.raises(OfficialBaselineError, match=r"no validation batch.*\{16000: 1\}"):
        official_config(base, TINY, tmp_path, tmp_path, [8000] * 4, [16000], seed=0, device="cpu")
    # the official trainer runs in its run folder: a checkpoint to start from is passed as an absolute path
    (tmp_path / "start.ckpt").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    cfg, _ = official_config(base, {**TINY, "init_from": "start.ckpt"}, tmp_path, tmp_path, [8000] * 4, [8000] * 4,
                             seed=0, device="cpu")
    assert cfg["init_from"] == str(tmp_path / "start.ckpt")
    for fresh in ({}, {"init_from": None}, {"init_from": "none"}):  # null in params.yaml is the baseline's 'none'
        assert official_config(base, {**TINY, **fresh}, tmp_path, tmp_path, [8000] * 4, [8000] * 4, seed=0,
                               device="cpu")[0]["init_from"] == "none"
    with pytest.raises(OfficialBaselineError, match="'gone.ckpt' .* does not exist"):
        official_config(base, {**TINY, "init_from": "gone.ckpt"}, tmp_path, tmp_path, [8000] * 4, [8000] * 4,
                        seed=0, device="cpu")


def test_speech_free_rows_are_dropped_and_named(tmp_path: Path) -> None:
    sr, n = 8000, 800
    rng = np.random.default_rng(0)
    paths = {}
    for name, x in {"noisy": rng.normal(0, 0.1, n), "speech": rng.normal(0, 0.1, n), "zeros": np.zeros(n)}.items():
        paths[name] = tmp_path / f"{name}.wav"
        sf.write(paths[name], x.astype(np.float32), sr)
    rows = pd.DataFrame({"utt_id": ["a", "b", "c"], "path": [str(paths["noisy"])] * 3, "sr": [sr] * 3,
                         "clean_path": [str(paths["speech"]), None, str(paths["zeros"])]})
    kept, dropped = split_speech_free(rows)
    assert kept["utt_id"].tolist() == ["a"]
    assert [(d["utt_id"], d["reason"].split(":")[0]) for d in dropped] == [("b", "speech_free"),
                                                                          ("c", "silent_reference")]
    write_lists(kept, tmp_path / "lists")
    assert (tmp_path / "lists" / "spk1.scp").read_text() == f"a {paths['speech'].resolve()}\n"
    with pytest.raises(OfficialBaselineError, match="b"):
        write_lists(rows.iloc[:2], tmp_path / "lists2")


def test_best_checkpoint_ignores_non_finite_losses(tmp_path: Path) -> None:
    ckpts = tmp_path / "baseline" / "version_0" / "checkpoints"
    ckpts.mkdir(parents=True)
    for name in ("best_epoch=00-step=000002-val_loss=0.700.ckpt", "best_epoch=00-step=000004-val_loss=nan.ckpt",
                 "best_epoch=01-step=000006-val_loss=0.500.ckpt"):
        (ckpts / name).write_text(name)
    path, loss = best_official_checkpoint(tmp_path)
    assert (path.name, loss) == ("best_epoch=01-step=000006-val_loss=0.500.ckpt", 0.5)


@pytest.mark.slow
@pytest.mark.skipif(_official_present() is not None, reason=_official_present() or "")
def test_official_checkout_trains_to_a_checkpoint_and_enhances(corpus: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capfd: pytest.CaptureFixture[str]) -> None:
    from curator.training.cli import main as train_main

    monkeypatch.chdir(tmp_path)
    work = tmp_path / "models" / "off" / "official"
    stale = work / "exp" / "off" / "baseline" / "version_0" / "checkpoints"
    stale.mkdir(parents=True)  # an earlier run's leftovers: must be neither resumed nor picked as best
    (stale / "best_epoch=09-step=000099-val_loss=0.001.ckpt").write_text("stale")
    checkout_runs = CHECKOUT / "exp" / "off"
    existed = checkout_runs.exists()
    overrides = ["train.backend=official", f"train.official.checkout={CHECKOUT}", f"train.official.python={PYTHON}",
                 "train.official.device=cpu", f"train.official.overrides={json.dumps(TINY)}"]
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "off", "--live_dir", "metrics/train", *overrides]) == 0

    metrics = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    # the corpus: 8 train rows at 8/16 kHz, train_07 speech-free; 4 dev rows
    assert metrics["speech_free_train"]["n"] == 1 and "train_07" in metrics["speech_free_train"]["examples"][0]
    assert metrics["speech_free_val"]["n"] == 0 and metrics["n_train_utts"] == 7 and metrics["n_val_utts"] == 4
    assert (metrics["train_batches_per_epoch"], metrics["val_batches"], metrics["steps"]) == (3, 2, 3)
    assert (metrics["configured_val_check_interval"], metrics["val_check_interval"]) == (5000, 1)
    assert metrics["n_validations"] == 3 and metrics["n_checkpoints"] == 2  # saves at steps 2, 3 (after a validation)
    assert math.isfinite(metrics["best_val_loss"]) and metrics["best_val_loss"] != 0.001
    assert metrics["last_val_loss"] < metrics["first_val_loss"]  # three optimiser steps lower the dev loss
    wav_scp = (work / "train" / "wav.scp").read_text().splitlines()
    assert len(wav_scp) == 7 and not any(line.startswith("train_07 ") for line in wav_scp)
    copied = yaml.safe_load((work / "off.yaml").read_text())
    assert copied["resume"] is False and copied["val_check_interval"] == 1
    assert copied["model_configs"] == TINY["model_configs"] and copied["num_train_epochs"] == 1
    assert not (stale / "best_epoch=09-step=000099-val_loss=0.001.ckpt").exists()  # a fresh run folder
    assert checkout_runs.exists() == existed  # the checkout is never written to
    best = tmp_path / "models" / "off" / "best.ckpt"
    assert best.read_bytes() == (work / metrics["official_checkpoint"]).read_bytes()
    assert "val_loss=" in metrics["official_checkpoint"] and f"step={metrics['best_step']:06d}" in \
        metrics["official_checkpoint"]
    curve = (tmp_path / "metrics" / "train" / "plots" / "metrics" / "val_loss_epoch.tsv").read_text().splitlines()
    assert curve[0] == "step\tval_loss_epoch" and len(curve) == 1 + 3
    # the safe load: the checkpoint pickles exactly SAFE_GLOBALS beyond tensors, so weights-only loading refuses it
    # unless they are allowed (what the inference launcher does in the official interpreter)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(best) == list(SAFE_GLOBALS)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(best, map_location="cpu", weights_only=True)

    # a real (barely trained) network, not a pass-through: its output differs from the noisy input
    _enhances_the_test_split(corpus, best, overrides, tmp_path)

    # imported with weights-only loading and no checkout, our bsrnn computes what the checkout's SEModel computes
    from curator.training.official_weights import import_official

    ours, name, options, meta = import_official(best)
    assert (name, options["num_channels"], options["num_layers"]) == ("bsrnn", 8, 1)
    assert meta["official_step"] == metrics["best_step"]
    x = torch.randn(2, 8000, generator=torch.Generator().manual_seed(0)) * 0.1
    np.save(tmp_path / "x.npy", x.numpy())
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    subprocess.run([PYTHON, "-c", OFFICIAL_BSRNN_OUTPUT, str(best), str(tmp_path / "x.npy"), "16000",
                    str(tmp_path / "y.npy")], env=env, check=True, capture_output=True, text=True)
    with torch.no_grad():
        mine = ours(x, 16000).numpy()
    np.testing.assert_allclose(mine, np.load(tmp_path / "y.npy"), atol=1e-6)

    # fine-tuning through the official trainer's own key, with a path relative to where `curator train` runs
    capfd.readouterr()
    shutil.copyfile(best, tmp_path / "start.ckpt")
    tuned = [*overrides[:-1], f"train.official.overrides={json.dumps({**TINY, 'init_from': 'start.ckpt'})}"]
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "tuned", "--live_dir", "metrics/tuned", *tuned]) == 0
    assert f"Init param loaded from {tmp_path / 'start.ckpt'}" in capfd.readouterr().out
    frozen = yaml.safe_load((tmp_path / "models" / "tuned" / "config.yaml").read_text())
    assert frozen["official_init_from"] == {"path": "start.ckpt",
                                            "sha256": hashlib.sha256(best.read_bytes()).hexdigest()}



# The official BSRNN's output for a checkpoint, in the official interpreter: argv = ckpt, input .npy, rate, output .npy
OFFICIAL_BSRNN_OUTPUT = """\
import sys, numpy as np, torch
from baseline_code.config import Config
from baseline_code.d_model import SEModel
torch.serialization.add_safe_globals([Config])
model = SEModel.load_from_checkpoint(sys.argv[1], map_location="cpu").eval()
x = torch.from_numpy(np.load(sys.argv[2]))
with torch.no_grad():
    y, _ = model.se_model(x, torch.full((x.shape[0],), x.shape[1]), int(sys.argv[3]))
np.save(sys.argv[4], y.numpy())
"""
# The weights FlowSEModel's inference runs (eval() swaps its EMA in), saved as plain tensors: argv = ckpt, output
OFFICIAL_FLOWSE_WEIGHTS = """\
import sys, torch
from baseline_code.config import Config
from baseline_code.flow_model import FlowSEModel
torch.serialization.add_safe_globals([Config])
model = FlowSEModel.load_from_checkpoint(sys.argv[1], map_location="cpu")
model.eval()
torch.save({k: v.detach().clone() for k, v in model.dnn.state_dict().items()}, sys.argv[2])
"""


# FlowSE (conf/models/BSRNN_flowse.yaml): its network size is the top-level bsrnn_hidden x num_layer (official 384 x 6)
TINY_FLOWSE = {"num_train_epochs": 1, "batch_size": 2, "num_worker": 1, "bsrnn_hidden": 8, "num_layer": 1}
# What the FlowSE checkpoint holds beyond weights, loaded in the official interpreter with only SAFE_GLOBALS allowed
READ_EMA = """\
import json, sys, torch
from baseline_code.config import Config
torch.serialization.add_safe_globals([Config])
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=True)
json.dump({"model_type": ckpt["hyper_parameters"]["cfg"].model_type, "num_updates": ckpt["ema"]["num_updates"],
           "n_shadow": len(ckpt["ema"]["shadow_params"]),
           "n_params": len([k for k in ckpt["state_dict"] if not k.startswith("encoder.")])}, sys.stdout)
"""


def test_overrides_must_be_keys_the_official_config_reads(tmp_path: Path) -> None:
    flowse = {"model_type": "flowse", "val_check_interval": 5000, "bsrnn_hidden": 384, "num_layer": 6}
    rates = [8000] * 4
    cfg, info = official_config(flowse, TINY_FLOWSE, tmp_path, tmp_path, rates, rates, seed=0, device="cpu")
    assert (cfg["bsrnn_hidden"], cfg["num_layer"], info["model_type"]) == (8, 1, "flowse")
    with pytest.raises(OfficialBaselineError, match="bsrnn_hidden"):  # the BSRNN key: FlowSE would ignore it
        official_config(flowse, TINY, tmp_path, tmp_path, rates, rates, seed=0, device="cpu")
    bsrnn = {"model_type": "discriminative", "model_configs": {"num_channel": 196, "num_layer": 6}}
    with pytest.raises(OfficialBaselineError, match=r"names bsrnn_hidden\b.*ignore them"):
        official_config(bsrnn, TINY_FLOWSE, tmp_path, tmp_path, rates, rates, seed=0, device="cpu")
    with pytest.raises(OfficialBaselineError, match="num_epochs"):
        official_config(bsrnn, {"num_epochs": 1}, tmp_path, tmp_path, rates, rates, seed=0, device="cpu")
    # a key of the baseline's Config that the YAML leaves out is fine
    assert official_config(bsrnn, {"save_top_k": 1}, tmp_path, tmp_path, rates, rates, seed=0,
                           device="cpu")[0]["save_top_k"] == 1


@pytest.mark.slow
@pytest.mark.skipif(_official_present() is not None, reason=_official_present() or "")
def test_official_flowse_config_trains_and_enhances(corpus: dict[str, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from curator.training.cli import main as train_main

    monkeypatch.chdir(tmp_path)
    checkout_runs = CHECKOUT / "exp" / "flow"
    existed = checkout_runs.exists()
    overrides = ["train.backend=official", f"train.official.checkout={CHECKOUT}", f"train.official.python={PYTHON}",
                 "train.official.device=cpu", "train.official.config=conf/models/BSRNN_flowse.yaml",
                 f"train.official.overrides={json.dumps(TINY_FLOWSE)}"]
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "flow", "--live_dir", "metrics/train", *overrides]) == 0

    work = tmp_path / "models" / "flow" / "official"
    metrics = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert metrics["model_type"] == "flowse" and metrics["n_train_utts"] == 7 and metrics["n_val_utts"] == 4
    assert (metrics["train_batches_per_epoch"], metrics["val_batches"], metrics["steps"]) == (3, 2, 3)
    assert (metrics["configured_val_check_interval"], metrics["val_check_interval"]) == (5000, 1)
    # FlowSE logs its validation loss per epoch only ("val_loss"); it samples t and the noise afresh in each
    # validation, so three steps at its learning rate of 1e-4 need not lower it: only finite values are checked
    assert metrics["val_loss_tag"] == "val_loss" and metrics["n_validations"] == 3 and metrics["n_checkpoints"] == 2
    assert all(math.isfinite(metrics[k]) for k in ("best_val_loss", "first_val_loss", "last_val_loss"))
    copied = yaml.safe_load((work / "flow.yaml").read_text())
    assert copied["model_type"] == "flowse" and (copied["bsrnn_hidden"], copied["num_layer"]) == (8, 1)
    assert "model_configs" not in copied and copied["resume"] is False and copied["val_check_interval"] == 1
    assert metrics["official_checkpoint"].startswith("exp/flow/baseline_flow/")  # its train_name
    assert f"step={metrics['best_step']:06d}-val_loss=" in metrics["official_checkpoint"]
    best = tmp_path / "models" / "flow" / "best.ckpt"
    assert best.read_bytes() == (work / metrics["official_checkpoint"]).read_bytes()
    assert checkout_runs.exists() == existed  # the checkout is never written to
    plots = tmp_path / "metrics" / "train" / "plots" / "metrics"
    assert len((plots / "val_loss.tsv").read_text().splitlines()) == 1 + 3
    assert len((plots / "sisnr_epoch.tsv").read_text().splitlines()) == 1 + 3  # its validation enhances batch 0
    # beyond tensors it pickles only SAFE_GLOBALS (its EMA state is tensors and numbers), and it holds the EMA
    # weights that its inference swaps in (FlowSEModel.eval), updated once per optimiser step
    assert torch.serialization.get_unsafe_globals_in_checkpoint(best) == list(SAFE_GLOBALS)
    env = {**os.environ, "PYTHONPATH": str(CHECKOUT)}
    held = json.loads(subprocess.run([PYTHON, "-c", READ_EMA, str(best)], env=env, check=True, capture_output=True,
                                     text=True).stdout)
    assert held["model_type"] == "flowse" and held["num_updates"] == metrics["best_step"]
    assert 0 < held["n_shadow"] <= held["n_params"]

    # a real (barely trained) generative model sampled from noise, not a pass-through
    _enhances_the_test_split(corpus, best, overrides, tmp_path)

    # imported with weights-only loading and no checkout: the weights the official inference runs (its EMA)
    from curator.training.official_weights import import_official, ours_to_official

    ours, name, options, meta = import_official(best)
    assert (name, options["num_channels"], options["num_layers"], meta["official_weights"]) == ("flowse", 8, 1, "ema")
    subprocess.run([PYTHON, "-c", OFFICIAL_FLOWSE_WEIGHTS, str(best), str(tmp_path / "ema.pt")], env=env, check=True,
                   capture_output=True, text=True)
    theirs = torch.load(tmp_path / "ema.pt", weights_only=True)
    mine = ours_to_official(ours.state_dict(), ours, "flowse")
    assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine)
    raw, *_ = import_official(best, weights="raw")
    assert not all(torch.equal(a, b) for a, b in zip(raw.state_dict().values(), ours.state_dict().values(),
                                                     strict=True))  # 3 updates moved the weights from their average


def test_config_yaml_records_the_official_start_weights_by_content(tmp_path: Path) -> None:
    from curator.training.cli import frozen_config

    curated, start = tmp_path / "curated.csv", tmp_path / "start.ckpt"
    curated.write_text("utt_id\na\n")
    start.write_bytes(b"weights")
    train = {"init_from": None, "official": {"overrides": {"init_from": str(start)}}}
    out = frozen_config({"train": train}, "x", str(curated), 1, 0, {})
    assert out["official_init_from"] == {"path": str(start), "sha256": hashlib.sha256(b"weights").hexdigest()}
    assert "init_from" not in out
    assert "official_init_from" not in frozen_config({"train": {"official": {"overrides": {"init_from": "none"}}}},
                                                     "x", str(curated), 1, 0, {})
