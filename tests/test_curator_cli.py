"""The `curator` entry point and `curator check` (bad params fail before any work)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from curator import check, cli


def test_usage_and_unknown_command(capsys):
    assert cli.main([]) == 2
    assert "usage: curator" in capsys.readouterr().out
    assert cli.main(["scroe"]) == 2
    assert "unknown command 'scroe'" in capsys.readouterr().err


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
