"""The select stage end to end: flags, outputs, byte-identical reruns, overrides, quotas files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from curator.cli import main as curator_main
from curator.contract.scores import write_table
from curator.selection.cli import main
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

from .conftest import TEST_PARAMS, stage_folder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scores file, its ground truth and the repository's params with a budget that fits the table."""
    return stage_folder(tmp_path_factory.mktemp("select_stage"),
                        SyntheticSpec(n=500, dim=16, seed=2, rows_per_source=40), K_hours=0.3)


def run(stage: Path, out: str, *extra: str) -> tuple[int, Path]:
    dest = stage / out
    dest.mkdir(exist_ok=True)
    argv = ["--config", str(stage / "params.yaml"), "--scores", str(stage / "scores.parquet"),
            "--quotas", str(stage / "params.yaml"), "--truth", str(stage / "truth.csv"),
            "--out", str(dest / "curated_train.csv"), "--metrics", str(dest / "select.json"),
            "--plots-dir", str(dest / "plots"), *extra]
    return main(argv), dest


def test_outputs_and_their_contents(stage: Path) -> None:
    code, out = run(stage, "a")
    assert code == 0
    frame = pd.read_csv(out / "curated_train.csv")
    assert list(frame.columns[:6]) == ["utt_id", "hours", "slice", "reason", "order", "in_quota"]
    assert frame["hours"].sum() <= 0.3 and frame["utt_id"].is_unique
    meta = json.loads((out / "curated_train_meta.json").read_text())
    assert meta["n_selected"] == len(frame) and len(meta["scores_sha256"]) == 64
    assert meta["config"]["select"]["name"] == "cvar" and "quota_report" in meta
    assert set(meta["quota_report"]["quota_values_absent_from_pool"]["distortion"]) == {"speech_free"}
    metrics = json.loads((out / "select.json").read_text())
    assert metrics["hours_per_slice"] == pytest.approx(frame.groupby("slice")["hours"].sum().to_dict(), rel=1e-6)
    assert 0 <= metrics["imperfect_ref_share"]["selected"] <= 1
    assert {"tail_coverage", "tail_coverage_eligible", "loss_cvar", "var_pool"} <= set(metrics["tail"])
    assert metrics["warnings"]["quota_values_absent"] == 1 and metrics["warnings"]["budget_unused"] == 0
    assert meta["warnings"][0]["code"] == "quota_values_absent" and "speech_free" in meta["warnings"][0]["message"]
    div = metrics["diversity"]
    assert div["violations_found"] == 0 and div["violations_repaired"] == 0 and div["check"].startswith("exact")
    assert div["nn_cosine_max"] <= 1 - 0.05 + 1e-6
    for name in ("hours_per_slice.csv", "loss_hist.csv", "hours_per_slice.png", "loss_hist.png"):
        assert (out / "plots" / name).stat().st_size > 0


def test_rerun_is_byte_identical(stage: Path) -> None:
    _, a = run(stage, "a")
    _, b = run(stage, "b")
    for name in ("curated_train.csv", "curated_train_meta.json", "select.json", "plots/loss_hist.csv",
                 "plots/hours_per_slice.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_alpha_override_changes_selection_and_metrics(stage: Path) -> None:
    _, a = run(stage, "a")
    code, c = run(stage, "c", "select.alpha=0.05")
    assert code == 0
    assert (a / "curated_train.csv").read_bytes() != (c / "curated_train.csv").read_bytes()
    ma, mc = (json.loads((d / "select.json").read_text()) for d in (a, c))
    assert ma["tail"]["alpha"] == 0.1 and mc["tail"]["alpha"] == 0.05
    assert ma["tail"]["loss_cvar"] != mc["tail"]["loss_cvar"]


def test_standalone_quotas_file_and_random(stage: Path) -> None:
    quotas = stage / "quotas.yaml"
    quotas.write_text("distortion: {reverb: 0.5, noise: 0.5}\n")
    code, out = run(stage, "q", "select.name=random")
    assert code == 0
    argv = ["--config", str(stage / "params.yaml"), "--scores", str(stage / "scores.parquet"),
            "--quotas", str(quotas), "--out", str(out / "q.csv"), "--metrics", str(out / "q.json"),
            "--plots-dir", str(out / "qp"), "select.name=random", "select.quality_gate.min_score=null"]
    assert main(argv) == 0
    frame = pd.read_csv(out / "q.csv")
    assert set(frame["slice"]) == {"reverb", "noise"}
    assert "imperfect_ref_share" not in json.loads((out / "q.json").read_text())


def test_bad_params_fail_before_work_naming_the_key(stage: Path, capsys: pytest.CaptureFixture) -> None:
    code, _ = run(stage, "bad", "select.K_hours=-1")
    assert code == 2 and "'select.K_hours' = -1" in capsys.readouterr().err
    code, _ = run(stage, "bad", "select.name=cvarr")
    assert code == 2 and "did you mean 'cvar'" in capsys.readouterr().err


def test_help_and_the_curator_entry_point(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        curator_main(["select", "--help"])
    assert exc.value.code == 0
    assert "strategies (select.name): coverage_only, cvar, mos_threshold, random" in capsys.readouterr().out


def test_scores_of_an_older_schema_version_are_a_clear_error(stage: Path, tmp_path: Path, capsys) -> None:
    import pyarrow.parquet as pq

    from curator.contract.scores import METADATA_SCHEMA_KEY, SCHEMA_VERSION

    table = pq.read_table(stage / "scores.parquet")
    old = tmp_path / "old_scores.parquet"
    pq.write_table(table.replace_schema_metadata({METADATA_SCHEMA_KEY: str(SCHEMA_VERSION - 1).encode()}), old)
    argv = ["--config", str(stage / "params.yaml"), "--scores", str(old), "--out", str(tmp_path / "c.csv"),
            "--metrics", str(tmp_path / "s.json"), "--plots-dir", str(tmp_path / "plots")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"has schema version {SCHEMA_VERSION - 1}, but this code reads version {SCHEMA_VERSION}" in err
    assert "old_scores.parquet" in err and "dvc repro score" in err
    assert not (tmp_path / "c.csv").exists()


@pytest.mark.parametrize("override", ["select.quotas={distortion: {reverb: 0.5, noise: 0.3}}",
                                      "select.quotas.distortion={reverb: 0.5, noise: 0.3}"])
def test_quotas_override_wins_over_the_quotas_file(stage: Path, override: str) -> None:
    code, out = run(stage, "quota_override", override)
    assert code == 0
    meta = json.loads((out / "curated_train_meta.json").read_text())
    assert meta["config"]["quotas"] == {"distortion": {"reverb": 0.5, "noise": 0.3}}
    assert meta["quota_report"]["slices"]["reverb"]["quota_fraction"] == pytest.approx(0.5)


def test_same_bytes_for_any_thread_count(tmp_path: Path) -> None:
    """The selection's work runs in blocks shaped by the data (workers.py), so 1, 2 and 3 threads write the same
    bytes on a table that takes every parallel path: row groups read in parallel, several coverage slices,
    cell-pruned (ivf) search with several row blocks per batch and several cell groups, and the windowed check."""
    table, truth = synthetic_scores(SyntheticSpec(n=24_000, dim=32, seed=4, rows_per_source=40))
    write_table(table, tmp_path / "scores.parquet", row_group_size=5_000)
    truth.to_csv(tmp_path / "truth.csv", index=False)
    params = yaml.safe_load(TEST_PARAMS.read_text())
    params["select"]["K_hours"] = 0.3 * float(table["duration_sec"].to_numpy().sum()) / 3600.0
    params["select"]["diversity"].update(search="ivf", chunk_size=3_000)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    outs = {}
    for threads in (1, 2, 3):
        code, outs[threads] = run(tmp_path, f"t{threads}", f"select.threads={threads}")
        assert code == 0
    meta = json.loads((outs[1] / "curated_train_meta.json").read_text())
    metrics = json.loads((outs[1] / "select.json").read_text())
    search = metrics["diversity"]
    assert search["mode"] == "ivf" and search["nlist"] > 1 and "threads" not in meta["config"]["select"]
    assert metrics["diversity"]["check"].startswith("exact all-pairs") and metrics["diversity"]["violations_found"] == 0
    for name in ("curated_train.csv", "curated_train_meta.json", "select.json", "plots/loss_hist.csv"):
        assert (outs[1] / name).read_bytes() == (outs[2] / name).read_bytes() == (outs[3] / name).read_bytes(), name


def test_reports_do_not_depend_on_the_blas_thread_count(tmp_path: Path) -> None:
    """OpenBLAS splits a long dot product over its threads (above 10,000 elements), which changes the last bits of
    an hours-weighted mean; the CLI pins BLAS to one thread for the whole run, reports included, so select.json
    and the sidecar are the same whatever the caller's BLAS threads (they were not: loss_mean differed)."""
    from threadpoolctl import threadpool_limits

    table, truth = synthetic_scores(SyntheticSpec(n=30_000, dim=8, seed=6, rows_per_source=40))
    write_table(table, tmp_path / "scores.parquet")
    truth.to_csv(tmp_path / "truth.csv", index=False)
    params = yaml.safe_load(TEST_PARAMS.read_text())
    params["select"]["K_hours"] = 0.5 * float(table["duration_sec"].to_numpy().sum()) / 3600.0
    params["select"]["diversity"]["min_cosine"] = 0.0  # the check and the search are not what this is about
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    outs = {}
    for blas in (1, 2):
        with threadpool_limits(limits=blas):
            code, outs[blas] = run(tmp_path, f"blas{blas}")
        assert code == 0
    for name in ("select.json", "curated_train_meta.json", "curated_train.csv"):
        assert (outs[1] / name).read_bytes() == (outs[2] / name).read_bytes(), name


def test_outputs_prepared_during_the_check_are_redone_when_it_repairs(stage: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The CSV, tail figures and plots are prepared from the provisional selection while the exact check runs;
    when the check drops rows (here: a search that misses every pair), they are prepared again from the final
    selection, so every output describes the same rows."""
    import numpy as np

    from curator.selection import cli as select_cli
    from curator.selection.diversity import ChunkNeighbours, NeighbourIndex

    def blind(self, rows):  # noqa: ANN001, ANN202
        self._home, self._angle, _ = self.locate(np.ascontiguousarray(self.emb[rows]))
        return ChunkNeighbours(hit=np.zeros(len(rows), bool), lims=np.zeros(len(rows) + 1, np.int64),
                               nbrs=np.zeros(0, np.int64))

    calls = []
    prepare = select_cli.outputs
    monkeypatch.setattr(NeighbourIndex, "query", blind)
    monkeypatch.setattr(select_cli, "outputs",
                        lambda sel, csv, truth: calls.append(sel.fill.check) or prepare(sel, csv, truth))
    code, out = run(stage, "repaired", "select.diversity.min_cosine=0.2")
    assert code == 0
    metrics = json.loads((out / "select.json").read_text())
    assert metrics["diversity"]["violations_repaired"] > 0
    assert len(calls) == 2 and calls[0] is None and calls[1] is not None  # provisional, then final
    curated = pd.read_csv(out / "curated_train.csv")
    slices = pd.read_csv(out / "plots" / "hours_per_slice.csv")
    assert len(curated) == metrics["n_selected"]
    assert curated["hours"].sum() == pytest.approx(metrics["hours_selected"])
    assert slices["selected_hours"].sum() == pytest.approx(metrics["hours_selected"])


def test_the_module_entry_point_keeps_exit_codes_messages_and_exit_handlers(stage: Path, tmp_path: Path) -> None:
    """``python -m curator.selection`` ends with os._exit after its outputs (skipping the interpreter's teardown):
    the exit code, the error message and the exit handlers (here: the params trace) must survive it."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CURATOR_PARAMS_TRACE": str(tmp_path / "trace")}
    base = [sys.executable, "-m", "curator.selection", "--config", str(stage / "params.yaml"),
            "--quotas", str(stage / "params.yaml"), "--metrics", str(tmp_path / "select.json"),
            "--plots-dir", str(tmp_path / "plots"), "--out", str(tmp_path / "curated.csv")]
    bad = subprocess.run([*base, "--scores", str(tmp_path / "absent.parquet")], capture_output=True, text=True,
                         env=env, cwd=REPO)
    assert bad.returncode == 2 and "absent.parquet" in bad.stderr and "does not exist" in bad.stderr
    good = subprocess.run([*base, "--scores", str(stage / "scores.parquet")], capture_output=True, text=True,
                          env=env, cwd=REPO)
    assert good.returncode == 0 and "selected" in good.stderr and (tmp_path / "curated.csv").is_file()
    traces = list((tmp_path / "trace").glob("*.json"))
    assert len(traces) == 2 and any("select.K_hours" in json.loads(t.read_text())["keys"] for t in traces)
