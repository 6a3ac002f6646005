from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from curator.config import (
    ConfigError,
    apply_overrides,
    check_range,
    load_params,
    load_section,
    parse,
    validate_params,
)


@dataclass
class Inner:
    min_cosine: float = 0.15


@dataclass
class Section:
    name: Literal["cvar", "random"]
    K_hours: float
    inner: Inner = field(default_factory=Inner)
    langs: list[str] = field(default_factory=list)
    cap: float | None = None

    def __post_init__(self) -> None:
        check_range("select.K_hours", self.K_hours, lo=0.0, lo_open=True)


def test_parse_builds_nested_dataclasses_and_coerces_ints_to_float():
    s = parse(Section, {"name": "cvar", "K_hours": 3, "inner": {"min_cosine": 0.2}, "langs": ["en"]}, "select")
    assert s.K_hours == 3.0 and isinstance(s.K_hours, float)
    assert s.inner.min_cosine == 0.2 and s.langs == ["en"] and s.cap is None


def test_unknown_key_names_key_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown parameter 'select.K_hour'.*did you mean 'K_hours'"):
        parse(Section, {"name": "cvar", "K_hour": 3}, "select")


def test_missing_key_is_named():
    with pytest.raises(ConfigError, match=r"missing parameter 'select.K_hours'"):
        parse(Section, {"name": "cvar"}, "select")


def test_bad_choice_lists_valid_choices():
    with pytest.raises(ConfigError, match=r"'select.name' = 'cvr'.*cvar, random"):
        parse(Section, {"name": "cvr", "K_hours": 1}, "select")


def test_range_check_from_post_init():
    with pytest.raises(ConfigError, match=r"select.K_hours.*must be > 0"):
        parse(Section, {"name": "cvar", "K_hours": -1}, "select")


def test_type_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"'select.inner.min_cosine' must be a number"):
        parse(Section, {"name": "cvar", "K_hours": 1, "inner": {"min_cosine": "x"}}, "select")
    with pytest.raises(ConfigError, match=r"'select.langs' must be a list"):
        parse(Section, {"name": "cvar", "K_hours": 1, "langs": "en"}, "select")


def test_overrides_parse_yaml_values_and_reject_typos():
    cfg = {"select": {"alpha": 0.1, "name": "cvar"}}
    out = apply_overrides(cfg, ["select.alpha=0.05", "select.name=random"])
    assert out["select"] == {"alpha": 0.05, "name": "random"} and cfg["select"]["alpha"] == 0.1
    with pytest.raises(ConfigError, match=r"unknown parameter 'select.alpah'.*did you mean 'alpha'"):
        apply_overrides(cfg, ["select.alpah=0.05"])
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(cfg, ["select.alpha"])


def test_repository_params_are_valid(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    sections = validate_params(load_params("params.yaml"))
    assert "data" in sections
    assert str(load_section("data").manifest_path("train")).endswith("train.jsonl")


def test_unknown_top_level_section(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("selct: {}\n")
    with pytest.raises(ConfigError, match=r"'selct'.*did you mean 'select'"):
        validate_params(load_params(p))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)


def _key_paths(node: object, prefix: str = "") -> set[str]:
    if not isinstance(node, dict) or not node:
        return {prefix}
    return set().union(*(_key_paths(v, f"{prefix}.{k}" if prefix else str(k)) for k, v in node.items()))


def test_tests_own_params_have_the_repository_keys(repo_root):
    """tests/params.yaml (the tests' own copy) keeps every key of params.yaml and no other."""
    import yaml

    mine = _key_paths(yaml.safe_load((repo_root / "tests" / "params.yaml").read_text()))
    theirs = _key_paths(yaml.safe_load((repo_root / "params.yaml").read_text()))
    # dict-valued knobs (quotas, language shares) may list other entries: compare sections two levels deep
    depth = {k.rsplit(".", 1)[0] if k.count(".") >= 2 else k for k in mine}
    assert depth == {k.rsplit(".", 1)[0] if k.count(".") >= 2 else k for k in theirs}


def test_every_knob_in_params_has_a_comment(repo_root):
    """Each `key: value` line of params.yaml carries a one-line comment (group headers need not)."""
    import re

    bare = [f"{i}: {line.strip()}" for i, line in enumerate((repo_root / "params.yaml").read_text().splitlines(), 1)
            if re.match(r"^\s*[A-Za-z_][\w.-]*:\s*[^#\s]", line) and "#" not in line]
    assert not bare, "params.yaml knobs without a comment:\n" + "\n".join(bare)


@pytest.mark.parametrize("section", ["select", "source_select"])
@pytest.mark.parametrize("group, values, key", [("diversity", {"nlist": -1}, "diversity.nlist"),
                                                ("coverage", {"clusters": 0}, "coverage.clusters"),
                                                ("penalties", {"quota_violation": -1}, "penalties.quota_violation")])
def test_a_shared_group_error_names_the_section_it_was_written_in(section, group, values, key):
    """``diversity``, ``coverage`` and ``penalties`` are one dataclass each, shared by select and source_select;
    a bad value under source_select was reported as a select key."""
    from curator.selection.params import SelectParams
    from curator.selection.sources.params import SourceSelectParams

    cls = SourceSelectParams if section == "source_select" else SelectParams
    with pytest.raises(ConfigError, match=rf"'{section}\.{key}' = -?[0-9.]+ must be"):
        parse(cls, {"name": "cvar", "K_hours": 1.0, group: values}, section)
