"""The whole DVC pipeline on a tiny profile, in temporary copies of the repository.

Checks the foundation's acceptance: `dvc repro` runs end to end; a second repro is a no-op; changing one param
reruns only what reads it; `dvc exp run -S ...` + `dvc metrics diff` show changed selection metrics; two clean runs
give identical hashes for the manifest, score and select outputs.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curator.config import TRACE_ENV, apply_overrides

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = Path(__file__).with_name("tiny_params.yaml")
TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
HASHED_STAGES = ("prepare", "manifest", "probe", "score", "select")
TRACE_DIR = "params_trace"
"""Where each stage process of the first repro writes the params keys it read and the modules it loaded."""


def _env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PYTHONPATH"] = str(root / "src")  # the copy's code, not the checkout's editable install
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("NUMBA_CACHE_DIR", str(REPO / ".numba_cache"))
    for key, val in (("GIT_AUTHOR_NAME", "ci"), ("GIT_AUTHOR_EMAIL", "ci@localhost"),
                     ("GIT_COMMITTER_NAME", "ci"), ("GIT_COMMITTER_EMAIL", "ci@localhost")):
        env.setdefault(key, val)
    return env


def run(cmd: list[str], cwd: Path, extra_env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(cwd, extra_env), capture_output=True, text=True, check=False)
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
    tiny = yaml.safe_load(TINY.read_text()) or {}
    replace = tiny.pop("replace", {})
    overrides = [f"{k}={json.dumps(v)}" for k, v in _flatten(tiny)]
    overrides += [f"{k}={json.dumps(v)}" for k, v in replace.items()]
    params = apply_overrides(yaml.safe_load(TEST_PARAMS.read_text()), overrides)  # the tests own their params
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    for d in ("metrics", "dvclive"):
        shutil.rmtree(dest / d, ignore_errors=True)
    (dest / ".gitignore").write_text((dest / ".gitignore").read_text() + f"/{TRACE_DIR}/\n")
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
    run(["dvc", "repro"], root, {TRACE_ENV: str(root / TRACE_DIR)})
    (root / "first_run_hashes.json").write_text(json.dumps(lock_hashes(root)))
    return root


def test_repro_produces_every_output(pipeline: Path):
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    ds, exp = params["data"]["dataset"], params["train"]["exp_name"]
    for rel in (f"data/manifests/{ds}/train.jsonl", "data/scores/train_scores.parquet",
                "data/curated/pairs/curated_train.csv", "data/curated/pairs/curated_train_meta.json",
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


def test_efficacy_matrix_report_and_adding_a_seed_reruns_only_that_seed(pipeline: Path):
    report = json.loads((pipeline / "metrics/compare.json").read_text())
    assert report["baseline"] == "random" and set(report["vs_baseline"]["0.5"]) == {"cvar", "sources_cvar"}
    cell = report["vs_baseline"]["0.5"]["cvar"]["pesq"]
    assert {"diff", "ci_low", "ci_high", "verdict", "tail_diff"} <= set(cell)
    assert "## each strategy against `random` at equal hours" in (pipeline / "metrics/compare.md").read_text()
    assert (pipeline / "metrics/plots/compare/learning_curve.png").stat().st_size > 0
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["compare"]["seeds"] = [0, 1]
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
    new_cells = {f"cmp_{s}@{v}-0.5-1" for s in ("train", "eval") for v in ("random", "cvar", "sources_cvar")}
    assert new_cells <= changed and changed - new_cells <= {"cmp_report"}, changed
    run(["git", "checkout", "params.yaml"], pipeline)


def test_param_change_reruns_only_dependent_stages(pipeline: Path):
    out = run(["dvc", "status", "--json"], pipeline)
    assert json.loads(out) == {}
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["select"]["alpha"] = 0.5
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
    assert "select" in changed and not changed & {"prepare", "manifest", "score"}, changed
    run(["git", "checkout", "params.yaml"], pipeline)


def test_a_selection_sweep_retrains_only_the_lists_it_changes(pipeline: Path):
    """`select.alpha` reruns every selection cell, but only cvar reads it: random's list folder (the list and a
    sidecar recording the knobs random reads) stays byte-identical and its training up to date; the tail figures
    at the new alpha go to the cell's report folder, which no training reads. Source-level cells read
    `source_select`, so theirs stays up to date too."""
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["select"]["alpha"] = 0.5
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cells = {f"cmp_select@{v}-0.5" for v in ("random", "cvar", "sources_cvar")}
    assert _ran(run(["dvc", "repro", "--glob", "cmp_select@*"], pipeline)) == cells
    report = json.loads((pipeline / "data/compare/select_report/random_k0.5/select.json").read_text())
    assert report["tail"]["alpha"] == 0.5
    stale = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
    assert "cmp_train@cvar-0.5-0" in stale, stale
    assert not stale & {"cmp_train@random-0.5-0", "cmp_train@sources_cvar-0.5-0"}, stale
    run(["git", "checkout", "params.yaml"], pipeline)
    # back at the committed alpha, DVC restores the three cells from its run cache instead of rerunning them
    out = run(["dvc", "repro", "--glob", "cmp_select@*"], pipeline)
    assert _ran(out) | _restored(out) == cells, out
    assert json.loads(run(["dvc", "status", "--json"], pipeline)) == {}


def test_own_audio_folders_are_inputs_of_the_stages_that_read_them(pipeline: Path):
    """A file added under dataset.folder.root (or dataset.urgent2026.root) makes prepare, manifest and sources
    stale, nothing else directly; removing it makes the pipeline up to date again."""
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    for key in ("folder", "urgent2026"):
        extra = pipeline / params["dataset"][key]["root"] / "new.wav"
        extra.write_bytes(b"RIFF")
        try:
            changed = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
            assert changed == {"prepare", "manifest", "sources"}, (key, changed)
        finally:
            extra.unlink()
    assert json.loads(run(["dvc", "status", "--json"], pipeline)) == {}


def _ran(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage '")}


def _restored(out: str) -> set[str]:
    """Stages DVC took from its run cache (same deps and params as a run it has seen) instead of running."""
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Stage '") and "is cached" in line}


def test_exp_run_changes_selection_metrics(pipeline: Path):
    """`dvc exp run -S` then `dvc metrics diff`, and two experiments compared with paired intervals. The runs
    stop at the stage each check reads (select, then eval): which stages a param change reruns downstream is
    the business of the staleness tests above. Leaves the copy at the `rand` experiment
    (the last test of the file starts by going back to the baseline run)."""
    run(["git", "add", "-A"], pipeline)
    run(["git", "commit", "-qm", "baseline run"], pipeline)
    run(["dvc", "exp", "run", "-S", "select.alpha=0.05", "select"], pipeline)
    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], pipeline))
    assert "metrics/select.json" in diff and diff["metrics/select.json"], diff
    run(["dvc", "exp", "run", "-n", "rand", "-S", "select.name=random", "eval"], pipeline)
    shown = run(["dvc", "exp", "show", "--json"], pipeline)
    assert "random" in shown
    # the paired comparison of two experiments of the pipeline: the committed run (HEAD) against `rand`
    out = run([sys.executable, "-m", "curator.evaluation.compare", "HEAD", "rand", "--config", "params.yaml",
               "--json", "compare.json"], pipeline)
    assert "## rand vs HEAD" in out and "95% CI" in out
    result = json.loads((pipeline / "compare.json").read_text())
    assert result["n_common"] > 0
    assert all(b["verdict"] in ("better", "worse", "no evidence") for b in result["systems"]["rand"]["metrics"].values())


def test_two_clean_runs_give_identical_hashes(pipeline: Path, tmp_path_factory):
    other = make_copy(tmp_path_factory.mktemp("run_b"))
    run(["dvc", "repro", "select"], other)
    first = {k: [tuple(o) for o in v] for k, v in json.loads((pipeline / "first_run_hashes.json").read_text()).items()}
    assert lock_hashes(other) == first


def _covered(key: str, listed: list[str]) -> bool:
    return any(key == item or key.startswith(item.rstrip("/") + (".")) for item in listed)


def _stage_of(argv: list[str], stages: dict) -> str | None:
    for name, stage in stages.items():
        cmd = shlex.split(stage["cmd"])
        module = cmd[2].replace(".", "/")  # `python -m pkg` runs pkg/__main__.py, `python -m pkg.mod` pkg/mod.py
        if argv[0].endswith((module + "/__main__.py", module + ".py")) and argv[1:] == cmd[3:]:
            return name
    return None


def test_stages_list_every_param_and_module_they_read(pipeline: Path):
    """Each stage's `params:` covers every key its code read, and its `deps:` every curator module it loaded."""
    stages = yaml.safe_load((pipeline / "dvc.lock").read_text())["stages"]
    seen, problems = set(), []
    for trace_file in sorted((pipeline / TRACE_DIR).glob("*.json")):
        trace = json.loads(trace_file.read_text())
        stage = _stage_of(trace["argv"], stages)
        if stage is None:
            continue
        seen.add(stage)
        listed = list(stages[stage].get("params", {}).get("params.yaml", {}))
        unlisted = [k for k in trace["keys"] if not _covered(k, listed)]
        if unlisted:
            problems.append(f"stage {stage} reads params it does not list in dvc.yaml: {unlisted}")
        deps = [d["path"] for d in stages[stage]["deps"]]
        uncovered = [m for m in trace["modules"]
                     if not any(m == d or m.startswith(d.rstrip("/") + "/") for d in deps)]
        if uncovered:
            problems.append(f"stage {stage} loads modules its dvc.yaml deps do not cover: {uncovered}")
    assert not problems, "\n".join(problems)
    assert seen == set(stages), f"no trace from stage(s) {sorted(set(stages) - seen)}"


def test_curation_level_sources_with_one_param(pipeline: Path):
    """`curation.level: sources` trains on pairs simulated from the selected sources: one param changes, and only
    train reruns (eval follows its checkpoint); then a source-selection knob reruns exactly selection and
    simulation, after which training is stale. Last in the file: it starts from the committed baseline run
    (the experiments above leave the workspace at theirs) and leaves the copy at the sources level."""
    run(["git", "checkout", "--", "."], pipeline)
    run(["dvc", "checkout", "--force"], pipeline)
    assert json.loads(run(["dvc", "status", "--json"], pipeline)) == {}
    params = yaml.safe_load((pipeline / "params.yaml").read_text())
    params["curation"]["level"] = "sources"
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert set(json.loads(run(["dvc", "status", "--json"], pipeline))) == {"train"}
    assert _ran(run(["dvc", "repro", "train"], pipeline)) == {"train"}
    assert set(json.loads(run(["dvc", "status", "--json"], pipeline))) == {"eval"}
    exp = params["train"]["exp_name"]
    frozen = yaml.safe_load((pipeline / f"models/{exp}/config.yaml").read_text())
    assert "curated/sources/curated_train.csv" in json.dumps(frozen)
    simulated = (pipeline / "data/curated/sources/train.jsonl").read_text().splitlines()
    selected = set(pd.read_csv(pipeline / "data/curated/source_selection/selected_sources.csv")["source_id"])
    assert simulated and all(json.loads(r)["speech_uid"] in selected for r in simulated if json.loads(r)["speech_uid"])
    params["source_select"]["K_hours"] = params["source_select"]["K_hours"] / 2
    (pipeline / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    ran = _ran(run(["dvc", "repro", "source_simulate"], pipeline))
    assert ran == {"source_select", "source_simulate"}, ran
    stale = set(json.loads(run(["dvc", "status", "--json"], pipeline)))
    # the matrix's selection cells list the source_select section too (a source-level cell reads it): they rerun,
    # and a cell whose list does not move retrains nothing (test_a_selection_sweep_retrains_only_the_lists_it_changes)
    assert {s for s in stale if not s.startswith("cmp_select@")} == {"train", "eval"}, stale
