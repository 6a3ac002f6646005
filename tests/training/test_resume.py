"""Resume after a kill: a run SIGKILLed half-way and restarted with the same command ends with the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import build_corpus, tiny_params

from curator.training.cli import main as train_main
from curator.training.resume import RESUME_DIRNAME, STATE

REPO = Path(__file__).resolve().parents[2]

EXP = "resume_exp"
MAX_STEPS = 24
EVERY = 6  # 8 rows in batches of 2 at two rates: 4 batches an epoch, so every snapshot but one is mid-epoch
POLL_SECONDS = 0.01
KILL_TIMEOUT_SECONDS = 300


def _params(corpus: dict[str, Path], tmp_path: Path) -> Path:
    cfg = yaml.safe_load(corpus["params"].read_text())
    cfg["train"].update(max_steps=MAX_STEPS, val_every_steps=EVERY, resume_every_steps=EVERY, exp_name=EXP)
    out = tmp_path / "resume_params.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def _cmd(params: Path, corpus: dict[str, Path]) -> list[str]:
    return [sys.executable, "-m", "curator.training", "--config", str(params), "--curated_list",
            str(corpus["curated"]), "--models_dir", "models", "--live_dir", "live"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "models" / EXP / "best.ckpt", weights_only=True)


def _kill_at(params: Path, corpus: dict[str, Path], run_dir: Path, step: int) -> None:
    """Run the command in ``run_dir`` and SIGKILL it once its resume state is at ``step``."""
    proc = subprocess.Popen(_cmd(params, corpus), cwd=run_dir, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = run_dir / "models" / EXP / RESUME_DIRNAME / STATE

    def at() -> int | None:
        try:
            return json.loads(state.read_text())["step"]
        except (OSError, ValueError, KeyError):
            return None

    deadline = time.monotonic() + KILL_TIMEOUT_SECONDS
    while at() != step and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed half-way"
    assert at() == step, f"killed at step {at()}, not {step}"
    # what `dvc repro` does before rerunning the stage: delete the declared outputs
    (run_dir / "models" / EXP / "best.ckpt").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path, Path]:
    """One corpus, its resume params and the run that was never killed, shared by the kill cases (each kills
    its own run in its own folder; the corpus is only read)."""
    root = tmp_path_factory.mktemp("resume")
    corpus = build_corpus(root / "corpus")
    corpus["params"] = tiny_params(root, corpus)
    params = _params(corpus, root)
    whole = root / "whole"
    whole.mkdir()
    subprocess.run(_cmd(params, corpus), cwd=whole, env=_env(), check=True, capture_output=True)
    assert not (whole / "models" / EXP / RESUME_DIRNAME).exists()  # a finished run leaves no resume state
    return corpus, params, whole


@pytest.mark.parametrize("kills", [(EVERY,), (2 * EVERY,), (EVERY, 2 * EVERY)],
                         ids=["mid_epoch", "epoch_boundary", "twice"])
def test_killed_run_resumes_to_the_same_weights(uninterrupted: tuple[dict[str, Path], Path, Path], tmp_path: Path,
                                                kills: tuple[int, ...]) -> None:
    """Killed at a snapshot in mid-epoch, at one that ends an epoch (step 12 = 3 epochs of 4 batches), and twice
    (the second snapshot written by a resumed run): the same weights and the same curves, epoch column included."""
    corpus, params, whole = uninterrupted
    killed = tmp_path / "killed"
    killed.mkdir()
    for step in kills:
        _kill_at(params, corpus, killed, step)
    again = subprocess.run(_cmd(params, corpus), cwd=killed, env=_env(), check=True, capture_output=True, text=True)
    assert f"resuming from models/{EXP}/{RESUME_DIRNAME}/last.ckpt (step {kills[-1]})" in again.stdout
    a, b = _weights(whole), _weights(killed)
    assert a["meta"] == b["meta"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert not (killed / "models" / EXP / RESUME_DIRNAME).exists()
    # the curves continue: the resumed run's DVCLive summary ends at the last step, its history is whole
    summary = json.loads((killed / "live" / "metrics.json").read_text())
    assert summary["steps"] == MAX_STEPS
    plots = whole / "live" / "plots" / "metrics"
    curves = sorted(p.relative_to(plots) for p in plots.rglob("*.tsv"))
    assert "epoch.tsv" in map(str, curves)
    for rel in curves:
        assert (killed / "live" / "plots" / "metrics" / rel).read_text() == (plots / rel).read_text(), rel


def test_resume_state_of_another_config_is_discarded(corpus: dict[str, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    stale = tmp_path / "models" / "tiny" / RESUME_DIRNAME
    stale.mkdir(parents=True)
    (stale / "last.ckpt").write_bytes(b"not a checkpoint")
    (stale / STATE).write_text(json.dumps({"step": 2, "fingerprint": "another"}))
    args = ["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]), "--exp.name", "tiny",
            "train.resume_every_steps=2"]
    assert train_main(args) == 0
    assert "was for another configuration" in capsys.readouterr().out
    assert not stale.exists() and (tmp_path / "models" / "tiny" / "best.ckpt").is_file()
