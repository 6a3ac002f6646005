"""Source-level selection: caps that hold (property tests), the list selector, noise filters, hardness, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from curator.config import parse
from curator.contract.source_scores import write_source_scores
from curator.contract.source_selection import COLUMNS, meta_path, read_selection
from curator.contract.sources import Source, write_sources
from curator.contract.versions import ContractError
from curator.selection.sources.cli import main
from curator.selection.sources.params import SourceSelectParams
from curator.selection.sources.select import SourceSelectionError, band_of, read_id_list, select_sources
from curator.selection.sources.synthetic import SourceSpec, pair_scores, synthetic_sources

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
EPS = 1e-9
NODIV = {"diversity.min_cosine": 0.0}


def make_params(**overrides: Any) -> SourceSelectParams:
    """The tests' source_select section with dotted overrides, small clusters and chunks for small tables."""
    cfg = yaml.safe_load(TEST_PARAMS.read_text())["source_select"]
    cfg["coverage"].update(clusters=4, min_cluster_size=4)
    cfg["diversity"].update(search="exact", chunk_size=32)
    cfg["quality_gate"]["min_score"] = None
    cfg["caps"]["max_hours_per_speaker"] = None
    for dotted, value in overrides.items():
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        assert leaf in node, dotted
        node[leaf] = value
    return parse(SourceSelectParams, cfg, "source_select")


def speech(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["kind"] == "speech"]


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pa.Table, pa.Table]:
    manifest, scores = synthetic_sources(SourceSpec(n_speech=600, seed=3, corpora=4, dim=16))
    return manifest, scores, pair_scores(manifest, seed=3)


# ------------------------------------------------------------------------------------------------ properties


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(40, 300), corpora=st.integers(2, 5),
       speakers=st.integers(3, 40), k_hours=st.floats(0.02, 1.5), spk_cap=st.one_of(st.none(), st.floats(0.005, 0.3)),
       corpus_slack=st.floats(0.0, 1.0), lang_cap=st.one_of(st.none(), st.floats(0.5, 1.0)),
       name=st.sampled_from(["random", "cvar", "coverage_only", "mos_threshold"]),
       diversity=st.sampled_from([0.0, 0.05]))
def test_caps_and_budget_hold_on_random_tables(seed: int, n: int, corpora: int, speakers: int, k_hours: float,
                                               spk_cap: float | None, corpus_slack: float, lang_cap: float | None,
                                               name: str, diversity: float) -> None:
    manifest, scores = synthetic_sources(SourceSpec(n_speech=n, seed=seed, corpora=corpora, speakers=speakers,
                                                    dim=8, n_noise=3, n_wind=1, n_rir=2))
    present = manifest.loc[manifest["kind"] == "speech", "corpus"].nunique()
    corpus_cap = 1.0 / present + corpus_slack * (1.0 - 1.0 / present)
    params = make_params(name=name, K_hours=k_hours, **{
        "caps.max_hours_per_speaker": spk_cap, "caps.max_share_per_corpus": corpus_cap,
        "caps.max_share_per_language": lang_cap, "diversity.min_cosine": diversity,
        "mos_threshold.column": "mos_dns", "mos_threshold.min_score": 2.5, "slice_key": ["corpus", "band"]})
    try:
        result = select_sources(params, manifest, scores, pair_scores(manifest, seed=seed))
    except SourceSelectionError as exc:  # caps no selection can meet (too few sources of a value) are errors
        assert "cannot hold" in str(exc) or "admit no selection" in str(exc) or "K_hours" in str(exc)
        assume(False)
        return
    sp = speech(result.frame)
    total = sp["hours"].sum()
    assert 0 < total <= k_hours + EPS
    assert sp["source_id"].is_unique
    if spk_cap is not None:
        assert sp.groupby(["corpus", "speaker"])["hours"].sum().max() <= spk_cap + EPS
    assert sp.groupby("corpus")["hours"].sum().max() <= corpus_cap * total + EPS
    if lang_cap is not None:
        assert sp.groupby("language")["hours"].sum().max() <= lang_cap * total + EPS
    caps = result.metrics["caps"]
    assert all(caps[k]["holds"] for k in ("max_hours_per_speaker", "max_share_per_corpus", "max_share_per_language"))
    assert result.metrics["hours_selected"] == pytest.approx(total)
    # hours are the sources' durations
    dur = manifest.set_index("source_id").loc[sp["source_id"], "duration_sec"].to_numpy() / 3600
    np.testing.assert_allclose(sp["hours"].to_numpy(), dur)


def test_share_caps_bind_and_hold_exactly(tables: tuple) -> None:
    manifest, scores, pairs = tables
    free = select_sources(make_params(name="random", K_hours=0.6), manifest, scores, pairs)
    top = speech(free.frame).groupby("corpus")["hours"].sum()
    assert top.max() / top.sum() > 0.3  # the synthetic corpora are unbalanced: the cap below binds
    capped = select_sources(make_params(name="random", K_hours=0.6, **{"caps.max_share_per_corpus": 0.3}),
                            manifest, scores, pairs)
    sp = speech(capped.frame)
    hours = sp.groupby("corpus")["hours"].sum()
    assert hours.max() <= 0.3 * hours.sum() + EPS
    assert capped.metrics["caps"]["max_share_per_corpus"]["max_observed"] <= 0.3 + 1e-12
    assert capped.metrics["caps"]["pre_limited_rows"] > 0
    assert hours.sum() > 0.5  # other corpora fill the budget


def test_share_caps_trim_to_the_final_total_when_the_pool_runs_out(tables: tuple) -> None:
    manifest, scores, pairs = tables
    params = make_params(name="random", K_hours=100.0, **{"caps.max_share_per_corpus": 0.3,
                                                          "caps.max_share_per_language": 0.5})
    result = select_sources(params, manifest, scores, pairs)
    sp = speech(result.frame)
    total = sp["hours"].sum()
    assert sp.groupby("corpus")["hours"].sum().max() <= 0.3 * total + EPS
    assert sp.groupby("language")["hours"].sum().max() <= 0.5 * total + EPS
    caps = result.metrics["caps"]
    assert caps["trimmed_rows"] > 0 and result.metrics["warnings"]["cap_trimmed"] == caps["trimmed_rows"]
    assert result.metrics["warnings"]["budget_clipped"] == 1
    assert "source_select.K_hours" in " ".join(w["message"] for w in result.details["warnings"])
    # the trim drops the latest picks: what is left is the first picks of each corpus, in selection order
    assert sp["order"].tolist() == list(range(len(sp)))


def test_sources_without_a_speaker_are_their_own_speaker(tables: tuple) -> None:
    manifest, scores, pairs = tables
    manifest = manifest.copy()
    speech_rows = manifest.index[manifest["kind"] == "speech"]
    manifest.loc[speech_rows[::2], "speaker"] = None  # half the speech has no speaker label
    result = select_sources(make_params(name="random", K_hours=0.5, **{"caps.max_hours_per_speaker": 0.004}),
                            manifest, scores, pairs)
    sp = speech(result.frame)
    assert sp["speaker"].isna().sum() > 20  # not lumped into one capped "unknown" speaker
    assert sp.groupby(["corpus", "speaker"])["hours"].sum().max() <= 0.004 + EPS
    assert result.metrics["caps"]["max_hours_per_speaker"]["holds"]


def test_infeasible_share_cap_is_a_clear_error(tables: tuple) -> None:
    manifest, scores, pairs = tables
    with pytest.raises(SourceSelectionError, match="leave no eligible speech source"):
        select_sources(make_params(name="random", **{"caps.max_hours_per_speaker": 1e-5}), manifest, scores, pairs)
    with pytest.raises(SourceSelectionError, match="max_share_per_corpus = 0.2 cannot hold.*4 corpus"):
        select_sources(make_params(name="random", **{"caps.max_share_per_corpus": 0.2}), manifest, scores, pairs)


# ------------------------------------------------------------------------------------------------ list selector


def test_list_reproduced_exactly_and_missing_ids_reported(tables: tuple, tmp_path: Path) -> None:
    manifest, scores, pairs = tables
    ids = manifest.loc[manifest["kind"] == "speech", "source_id"].to_numpy()
    rng = np.random.default_rng(0)
    chosen = rng.choice(ids, 40, replace=False).tolist()  # list order is not id order
    listing = tmp_path / "official.scp"
    lines = [f"{u} 16000 /data/{u}.flac" for u in chosen[:20]] + ["nope_1 16000 /x.flac"] + \
        [f"{u} 48000 /data/{u}.flac" for u in chosen[20:]] + ["nope_2 8000 /y.flac", chosen[3] + " 16000 /dup"]
    listing.write_text("\n".join(lines) + "\n")
    params = make_params(name="list", K_hours=10.0, **{"list.path": str(listing)})
    result = select_sources(params, manifest, scores, pairs, read_id_list(listing))
    sp = speech(result.frame)
    assert sp["source_id"].tolist() == chosen
    assert (sp["reason"] == "list").all() and sp["order"].tolist() == list(range(40))
    meta = result.metrics["list"]
    assert meta["missing"] == 2 and meta["missing_examples"] == ["nope_1", "nope_2"]
    assert meta["duplicate_ids"] == 1 and meta["reproduced_exactly"] and not meta["over_budget"]
    assert result.metrics["warnings"]["list_missing"] == 2


def test_list_over_budget_keeps_the_prefix_that_fits(tables: tuple, tmp_path: Path) -> None:
    manifest, scores, pairs = tables
    sp_rows = manifest[manifest["kind"] == "speech"].iloc[::-1].head(50)
    listing = tmp_path / "list.csv"
    pd.DataFrame({"source_id": sp_rows["source_id"], "note": "x"}).to_csv(listing, index=False)
    hours = sp_rows["duration_sec"].to_numpy() / 3600
    budget = float(hours[:30].sum()) + 0.5 * float(hours[30])
    result = select_sources(make_params(name="list", K_hours=budget, **{"list.path": str(listing)}),
                            manifest, scores, pairs, read_id_list(listing))
    sp = speech(result.frame)
    assert sp["source_id"].tolist() == sp_rows["source_id"].tolist()[:30]
    assert sp["hours"].sum() <= budget + EPS
    assert result.metrics["list"]["over_budget"] and not result.metrics["list"]["reproduced_exactly"]
    assert result.metrics["warnings"]["list_over_budget"] == 20


def test_list_file_formats(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("# header comment\nu1\n\nu2 extra\n")
    assert read_id_list(tmp_path / "a.txt") == ["u1", "u2"]
    (tmp_path / "b.csv").write_text("hours,source_id\n1,u3\n2,u4\n")
    assert read_id_list(tmp_path / "b.csv") == ["u3", "u4"]
    with pytest.raises(SourceSelectionError, match="does not exist"):
        read_id_list(tmp_path / "none.txt")


# ------------------------------------------------------------------------------------------------ noise, hardness, bands


def test_noise_with_speech_dropped_and_counted(tables: tuple) -> None:
    manifest, scores, pairs = tables
    result = select_sources(make_params(name="random"), manifest, scores, pairs)
    flagged = scores.filter(pa.compute.equal(scores["kind"], "noise")).to_pandas()
    has = set(flagged.loc[flagged["noise_has_speech"].astype(bool), "source_id"])
    assert has
    kept = set(result.frame.loc[result.frame["kind"] == "noise", "source_id"])
    assert kept == set(flagged["source_id"]) - has
    assert result.metrics["noise"]["noise"]["dropped_has_speech"] == len(has)
    n_rir = int((manifest["kind"] == "rir").sum())
    assert (result.frame["kind"] == "rir").sum() == n_rir  # every RIR passes
    keep_all = select_sources(make_params(name="random", **{"noise.drop_with_speech": False}), manifest, scores, pairs)
    assert (keep_all.frame["kind"] == "noise").sum() == len(flagged)


def test_unscored_noise_is_kept_and_counted(tables: tuple) -> None:
    manifest, scores, pairs = tables
    drop = pa.compute.invert(pa.compute.equal(scores["source_id"], "wind_noise00000"))
    result = select_sources(make_params(name="random"), manifest, scores.filter(drop), pairs)
    row = result.frame[result.frame["source_id"] == "wind_noise00000"]
    assert row["reason"].tolist() == ["unscored"]
    assert result.metrics["noise"]["wind_noise"]["unscored_kept"] == 1


def test_unscored_speech_is_left_out_and_stray_scores_counted(tables: tuple) -> None:
    manifest, scores, pairs = tables
    gone = pa.compute.invert(pa.compute.is_in(scores["source_id"], pa.array(["sp010", "sp020"])))
    stray = scores.slice(0, 1).set_column(0, "source_id", pa.array(["not_in_manifest"]))
    shuffled = pa.concat_tables([stray, scores.filter(gone)]).take(pa.array(np.random.default_rng(1).permutation(
        scores.num_rows - 1)))  # rows in no particular order
    result = select_sources(make_params(name="random", K_hours=100.0, **NODIV), manifest, shuffled, pairs)
    sp = speech(result.frame)
    assert not {"sp010", "sp020", "not_in_manifest"} & set(sp["source_id"])
    pool = result.metrics["speech_pool"]
    assert pool["unscored_rows"] == 2 and pool["scores_rows_not_in_manifest"] == 1
    assert len(sp) == pool["manifest_rows"] - 2  # the whole pool fits: every scored source is selected
    same = select_sources(make_params(name="random", K_hours=100.0, **NODIV), manifest, scores.filter(gone), pairs)
    pd.testing.assert_frame_equal(result.frame, same.frame)  # row order of the scores table is irrelevant


def test_pair_hardness_and_its_fallback(tables: tuple) -> None:
    manifest, scores, pairs = tables
    result = select_sources(make_params(name="cvar", K_hours=0.3), manifest, scores, pairs)
    df = pairs.to_pandas()
    mean = df.groupby("speech_uid")["loss_proxy"].mean()
    sp = speech(result.frame).set_index("source_id")
    has = sp.index.isin(mean.index)
    np.testing.assert_allclose(sp.loc[has, "hardness"], mean.reindex(sp.index[has]), rtol=1e-12)
    fallback = result.metrics["hardness"]["fallback_value"]
    assert fallback == pytest.approx(mean.mean())
    np.testing.assert_allclose(sp.loc[~has, "hardness"], fallback)
    assert result.metrics["hardness"]["fallback_sources"] == int(
        (~manifest.loc[manifest["kind"] == "speech", "source_id"].isin(mean.index)).sum())
    assert set(sp["reason"]) <= {"cvar_tail", "coverage"} and "cvar_tail" in set(sp["reason"])
    with pytest.raises(SourceSelectionError, match="--pair-scores"):
        select_sources(make_params(name="cvar"), manifest, scores, None)


def test_bands_from_edges() -> None:
    params = make_params()
    labels = params.band_labels()
    assert labels == ["0-3.5k", "3.5k-7k", "7k-10.5k", "10.5k-15k", "15k-20k", "20k+"]
    got = band_of(np.array([3000.0, 3500.0, 7900.0, np.nan, 23000.0]), params.bandwidth_edges_hz, labels)
    assert got.tolist() == ["0-3.5k", "3.5k-7k", "7k-10.5k", "unknown", "20k+"]


def test_quotas_and_gate_apply_to_sources(tables: tuple) -> None:
    manifest, scores, pairs = tables
    params = make_params(name="random", K_hours=0.4, slice_key=["language"],
                         quotas={"language": {"zh": 0.25}}, **{"quality_gate.min_score": 0.8,
                                                               "quality_gate.column": "ref_quality"})
    result = select_sources(params, manifest, scores, pairs)
    sp = speech(result.frame)
    assert (sp["ref_quality"] >= 0.8).all()
    share = sp.loc[sp["language"] == "zh", "hours"].sum() / sp["hours"].sum()
    assert share == pytest.approx(0.25, abs=0.03)
    assert result.metrics["gate"]["gated_rows"] > 0


# ------------------------------------------------------------------------------------------------ CLI


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory, tables: tuple) -> Path:
    manifest, scores, pairs = tables
    root = tmp_path_factory.mktemp("source_select")
    write_sources(root / "sources.jsonl", [Source(**r) for r in manifest.astype(object).where(manifest.notna(), None).to_dict("records")])
    write_source_scores(scores, root / "source_scores.parquet")
    from curator.contract.scores import write_table

    write_table(pairs.append_column("path", pa.array(["p"] * pairs.num_rows)), root / "train_scores.parquet")
    params = yaml.safe_load(TEST_PARAMS.read_text())
    params["source_select"].update(K_hours=0.15)
    params["source_select"]["caps"].update(max_hours_per_speaker=0.01, max_share_per_corpus=0.4)
    params["source_select"]["coverage"].update(clusters=8, min_cluster_size=4)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run_cli(stage: Path, out: str, *extra: str, pairs: bool = True) -> tuple[int, Path]:
    dest = stage / out
    argv = ["--config", str(stage / "params.yaml"), "--sources", str(stage / "sources.jsonl"),
            "--scores", str(stage / "source_scores.parquet"),
            *(["--pair-scores", str(stage / "train_scores.parquet")] if pairs else []),
            "--out", str(dest / "selected_sources.csv"), "--metrics", str(dest / "source_select.json"), *extra]
    return main(argv), dest


def test_cli_outputs_are_complete_and_deterministic(stage: Path, tables: tuple) -> None:
    manifest, scores, _ = tables
    code, a = run_cli(stage, "a")
    assert code == 0
    frame = read_selection(a / "selected_sources.csv")
    assert list(frame.columns) == list(COLUMNS)
    sp = speech(frame)
    assert 0.14 < sp["hours"].sum() <= 0.15
    assert sp.groupby(["corpus", "speaker"])["hours"].sum().max() <= 0.01 + EPS
    assert sp.groupby("corpus")["hours"].sum().max() <= 0.4 * sp["hours"].sum() + EPS
    assert set(sp["reason"]) <= {"cvar_tail", "coverage"}
    assert frame["order"].tolist() == list(range(len(frame)))
    assert set(frame["kind"]) == {"speech", "noise", "wind_noise", "rir"}
    labels = manifest.set_index(["kind", "source_id"])
    joined = labels.loc[list(zip(frame["kind"], frame["source_id"], strict=True))]
    assert (joined["path"].to_numpy() == frame["path"].to_numpy()).all()
    meta = json.loads(meta_path(a / "selected_sources.csv").read_text())
    assert meta["schema_version"] == 1 and meta["config"]["source_select"]["K_hours"] == 0.15
    assert len(meta["inputs"]["scores"]["sha256"]) == 64 and meta["inputs"]["list"] is None
    metrics = json.loads((a / "source_select.json").read_text())
    assert metrics["hours_selected"] == pytest.approx(sp["hours"].sum())
    assert metrics["hours_per_corpus"] == pytest.approx(sp.groupby("corpus")["hours"].sum().to_dict())
    assert metrics["caps"]["max_hours_per_speaker"]["holds"] and metrics["within_budget"]
    assert metrics["selection"]["diversity"]["min_cosine"] == 0.05
    assert metrics["noise"]["noise"]["dropped_has_speech"] > 0
    code, b = run_cli(stage, "b")
    assert code == 0
    for name in ("selected_sources.csv", "selected_sources_meta.json", "source_select.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_cli_list_selector(stage: Path, tables: tuple, monkeypatch: pytest.MonkeyPatch,
                           caplog: pytest.LogCaptureFixture) -> None:
    manifest = tables[0]
    ids = manifest.loc[manifest["kind"] == "speech", "source_id"].tolist()[5:25]
    (stage / "list.txt").write_text("\n".join([*ids, "ghost"]) + "\n")
    monkeypatch.chdir(stage)  # the pipeline's working directory: data/lists/ is the DVC-tracked place for lists
    with caplog.at_level("WARNING"):
        code, out = run_cli(stage, "list", "source_select.name=list", f"source_select.list.path={stage / 'list.txt'}",
                            pairs=False)
    assert code == 0
    assert "outside data/lists/" in caplog.text and "will not rerun" in caplog.text  # DVC cannot see its edits
    (stage / "data/lists").mkdir(parents=True)
    (stage / "data/lists/list.txt").write_bytes((stage / "list.txt").read_bytes())
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert run_cli(stage, "tracked", "source_select.name=list", "source_select.list.path=data/lists/list.txt",
                       pairs=False)[0] == 0
    assert "outside data/lists/" not in caplog.text
    assert (stage / "tracked/selected_sources.csv").read_bytes() == (out / "selected_sources.csv").read_bytes()
    frame = read_selection(out / "selected_sources.csv")
    assert speech(frame)["source_id"].tolist() == ids
    metrics = json.loads((out / "source_select.json").read_text())
    assert metrics["list"]["missing"] == 1 and metrics["list"]["missing_examples"] == ["ghost"]
    meta = json.loads((out / "selected_sources_meta.json").read_text())
    assert len(meta["inputs"]["list"]["sha256"]) == 64


def test_cli_errors_name_the_problem(stage: Path, capsys: pytest.CaptureFixture) -> None:
    code, _ = run_cli(stage, "e1", pairs=False)
    assert code == 2 and "--pair-scores" in capsys.readouterr().err
    code, _ = run_cli(stage, "e2", "source_select.name=greedy")
    assert code == 2 and "source_select.name" in capsys.readouterr().err
    code, _ = run_cli(stage, "e3", "source_select.caps.max_share_per_corpus=1.5")
    assert code == 2 and "max_share_per_corpus" in capsys.readouterr().err
    code, _ = run_cli(stage, "e4", "source_select.K_hours=0")
    assert code == 2 and "source_select.K_hours" in capsys.readouterr().err


def test_reader_checks_the_sidecar(stage: Path) -> None:
    code, out = run_cli(stage, "v")
    assert code == 0
    side = out / "selected_sources_meta.json"
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "schema_version": 99}))
    with pytest.raises(ContractError, match="schema version 99"):
        read_selection(out / "selected_sources.csv")
    side.unlink()
    with pytest.raises(ContractError, match="no sidecar"):
        read_selection(out / "selected_sources.csv")
