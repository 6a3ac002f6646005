"""The whole DVC pipeline on a tiny profile, in temporary copies of the repository.

Checks the foundation's acceptance: `dvc repro` runs end to end; a second repro is a no-op; changing one param
reruns only what reads it; `dvc exp run -S ...` + `dvc metrics diff` show changed selection metrics; two clean runs
give identical hashes for the manifest, score and select outputs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curator.config import apply_overrides

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny_params.yaml")
HASHED_STAGES = ("manifest", "score", "select")


def _env(root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root / "src")  # the copy's code, not the checkout's editable install
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    for key, val in (("GIT_AUTHOR_NAME", "ci"), ("GIT_AUTHOR_EMAIL", "ci@localhost"),
                     ("GIT_COMMITTER_NAME", "ci"), ("GIT_COMMITTER_EMAIL", "ci@localhost")):
        env.setdefault(key, val)
    return env


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(cwd), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout + proc.stderr


def make_copy(dest: Path) -> Path:
    """Copy the tracked and untracked-but-not-ignored files (what a clone has) and commit them."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for rel in filter(None, files):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    overrides = [f"{k}={json.dumps(v)}" for k, v in _flatten(yaml.safe_load(TINY.read_text()) or {})]
    params = apply_overrides(yaml.safe_load((dest / "params.yaml").read_text()), overrides)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    for d in ("metrics", "dvclive"):
        shutil.rmtree(dest / d, ignore_errors=True)
    run(["git", "init", "-q"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny copy"], dest)
    return dest


def _flatten(d: dict, prefix: str = "") -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out += _flatten(v, key + ".")
        else:
            out.append((key, v))
    return out


def lock_hashes(root: Path) -> dict[str, list[tuple[str, str]]]:
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    # data outputs only: the stage metrics JSONs carry wall-clock throughput figures
    return {s: sorted((o["path"], o["md5"]) for o in lock[s].get("outs", []) if not o["path"].startswith("metrics/"))
            for s in HASHED_STAGES}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory) -> Path:
    root = make_copy(tmp_path_factory.mktemp("run_a"))
    run(["dvc", "repro"], root)
    (root / "first_run_hashes.json").write_text(json.dumps(lock_hashes(root)))
    return root


def test_repro_produces_every_output(pipeline: Path):
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    ds, exp = params["data"]["dataset"], params["train"]["exp_name"]
    for rel in (f"data/manifests/{ds}/train.jsonl", "data/scores/train_scores.parquet",
                "data/curated/curated_train.csv", "data/curated/curated_train_meta.json",
                f"models/{exp}/best.ckpt", "metrics/select.json", "metrics/eval.json"):
        assert (pipeline / rel).is_file(), rel
    flat = json.dumps(json.loads((pipeline / "metrics/eval.json").read_text())).lower()
    for metric in ("pesq", "estoi", "si_sdr"):
        assert metric in flat


def test_second_repro_is_a_noop(pipeline: Path):
    out = run(["dvc", "status"], pipeline)
    assert "up to date" in out.lower(), out
    out = run(["dvc", "repro"], pipeline)
    assert "Running stage" not in out, out


def test_param_change_reruns_only_dependent_stages(pipeline: Path):
    out = run(["dvc", "status", "--json"], pipeline)
    assert json.loads(out) == {}
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["select"]["alpha"] = 0.5
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
    assert "select" in changed and not changed & {"prepare", "manifest", "score"}, changed
    run(["git", "checkout", "params.yaml"], pipeline)


def test_exp_run_changes_selection_metrics(pipeline: Path):
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-qm", "baseline run"], pipeline)
    run(["dvc", "exp", "run", "-S", "select.alpha=0.05"], pipeline)
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], pipeline))
    assert any(k.startswith("metrics/select.json") for k in diff), diff
    assert "metrics/select.json" in diff and diff["metrics/select.json"], diff
    run(["dvc", "exp", "run", "-S", "select.name=random"], pipeline)
    shown = run(["dvc", "exp", "show", "--json"], pipeline)
    assert "random" in shown


def test_two_clean_runs_give_identical_hashes(pipeline: Path, tmp_path_factory):
    other = make_copy(tmp_path_factory.mktemp("run_b"))
    run(["dvc", "repro", "select"], other)
    first = {k: [tuple(o) for o in v] for k, v in json.loads((pipeline / "first_run_hashes.json").read_text()).items()}
    assert lock_hashes(other) == first
