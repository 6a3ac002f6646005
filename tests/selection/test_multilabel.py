"""Per-augmentation flags: derived from manifest rows, carried to the curated list, filtered on, and held by quotas.

The pools here reverberate about half of the rows labelled with another distortion (as the official simulation
does), so "reverb" as a primary label and "reverb" as a flag differ by a factor of two or more.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from curator import check
from curator.config import ConfigError, parse
from curator.contract.data import Filters
from curator.contract.filters import FilterError, apply_filters
from curator.contract.flags import FLAG_NAMES, FlagMatrix, flags_from_arrow, flags_from_lists, row_flags
from curator.contract.scores import write_table
from curator.datasets.labels import DISTORTIONS, augmentation_kind, primary_distortion
from curator.selection.cli import main
from curator.selection.params import SelectParams
from curator.selection.pool import load_pool
from curator.selection.quotas import plan_quotas
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

from .conftest import make_params, run_selection, table_hours

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
CLIP = "clipping(min=0.03,max=0.99)"
PLOSS = "packet_loss(packet_loss_indices=[16, 17],packet_duration_ms=20)"
WIND = "wind_noise(threshold=0.29,ratio=8.5,clipping=False)"
CODEC = "codec(format=mp3,encoder=None,qscale=3)"


# ---------------------------------------------------------------- flags of a manifest row

@pytest.mark.parametrize(("augs", "noise", "rir", "free", "expected"), [
    ([], "noise_1", None, False, ["noise"]),
    ([], "noise_1", "rir_3", False, ["noise", "reverb"]),
    ([CLIP, PLOSS], "noise_1", "rir_3", False, ["clipping", "noise", "packet_loss", "reverb"]),
    ([WIND, CODEC], "wind_noise_7", "rir_3", False, ["codec", "reverb", "wind"]),
    (["bandwidth_limitation-none->16000"], "noise_1", None, False, ["noise"]),
    (["bandwidth_limitation-soxr_lq->8000"], "noise_1", None, False, ["bandwidth_limitation", "noise"]),
    ([], "noise_1", None, True, ["noise", "speech_free"]),
])
def test_flags_of_official_rows_include_the_primary_label(augs, noise, rir, free, expected) -> None:  # noqa: ANN001
    label = primary_distortion(augs, noise, rir, free)
    flags = row_flags(augs, label, noise, rir)
    assert flags == expected
    assert label in flags
    assert row_flags(flags, label, noise, rir) == flags  # idempotent: carried flags stay flags


def test_flag_vocabulary_and_kinds_agree_with_the_dataset_labels() -> None:
    assert set(FLAG_NAMES) == set(DISTORTIONS)
    for aug in (CLIP, PLOSS, WIND, CODEC, "bandwidth_limitation-soxr_vhq->22050"):
        assert row_flags([aug], None, None, None) == [augmentation_kind(aug)]
    # another tool's strings count by their leading name; rows without anything get their label only
    assert row_flags(["Babble(snr=3)", "  "], "noise", None, None) == ["babble", "noise"]
    assert row_flags(None, "reverb", None, None) == ["reverb"]


def test_flag_matrix_from_arrow_equals_the_row_lists() -> None:
    lists = [["noise", "reverb"], [], None, ["wind"], ["clipping", "noise"], ["reverb"]]
    a = flags_from_lists(lists)
    b = flags_from_arrow(pa.chunked_array([pa.array(lists[:3], pa.list_(pa.string())),
                                           pa.array(lists[3:], pa.list_(pa.string()))]))
    assert a.names == b.names == ["clipping", "noise", "reverb", "wind"]
    np.testing.assert_array_equal(a.matrix, b.matrix)
    assert a.has("reverb").tolist() == [True, False, False, False, False, True]
    assert a.any_of(["wind", "clipping"]).tolist() == [False, False, False, True, True, False]
    assert not a.has("codec").any()


# ---------------------------------------------------------------- params syntax

def test_quota_and_filter_syntax_is_validated() -> None:
    base = {"name": "cvar", "K_hours": 1.0}
    ok = parse(SelectParams, {**base, "quotas": {"distortion": {"noise": 0.6}, "augmentations": {"reverb": 0.7,
                                                                                                 "clipping": 0.5}}},
               "select")
    assert ok.quotas["augmentations"] == {"reverb": 0.7, "clipping": 0.5}  # flags overlap: no sum limit
    with pytest.raises(ConfigError, match=r"augmentations.reverb = 1.5 must lie in \[0, 1\]"):
        parse(SelectParams, {**base, "quotas": {"augmentations": {"reverb": 1.5}}}, "select")
    with pytest.raises(ConfigError, match="cannot be a slice-key column.*select.quotas.augmentations"):
        parse(SelectParams, {**base, "slice_key": ["distortion", "augmentations"]}, "select")
    with pytest.raises(ConfigError, match="'reverb' is not a slice-key column.*per-augmentation flags go under"):
        parse(SelectParams, {**base, "quotas": {"reverb": {"yes": 0.5}}}, "select")
    with pytest.raises(ConfigError, match="repeats a value"):
        Filters(augmentations=["reverb", "reverb"])
    with pytest.raises(ConfigError, match="blank or space-padded"):
        Filters(languages=["en "])


@pytest.mark.parametrize(("override", "message"), [
    ("data.filters.augmentations=[reverb, reverb]", "'data.filters.augmentations' repeats a value"),
    ("data.filters.languages=[' en']", "'data.filters.languages' has a blank or space-padded value"),
    ("select.quotas.augmentations={reverb: 1.5}", "quota augmentations.reverb = 1.5 must lie in [0, 1]"),
    ("select.slice_key=[augmentations]", "'augmentations' cannot be a slice-key column"),
    ("select.quotas.augmentations={reverb: 0.6, clipping: 0.6}", None),
])
def test_curator_check_validates_the_syntax(override: str, message: str | None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    code = check.main(["--config", str(TEST_PARAMS), override])
    err = capsys.readouterr().err
    assert (code, message is None or message in err) == ((0, True) if message is None else (2, True)), err


# ---------------------------------------------------------------- quotas on flags

@pytest.fixture(scope="module")
def pool_table() -> pa.Table:
    return synthetic_scores(SyntheticSpec(n=1500, dim=16, seed=4, rows_per_source=50))[0]


def _reverb_hours(sel) -> tuple[float, float]:  # noqa: ANN001
    has = sel.pool.flags.has("reverb")
    return float(sel.pool.hours[sel.selected & has].sum()), float(sel.pool.hours[has].sum() / sel.pool.hours.sum())


@pytest.mark.parametrize("quotas", [
    {"augmentations": {"reverb": 0.8}},
    # the primary label reverb (a subset of the flag) has its own quota: the plan is raked so both hold
    {"distortion": {"reverb": 0.1, "noise": 0.2, "clipping": 0.2}, "augmentations": {"reverb": 0.8}},
    {"distortion": {"noise": 0.2}, "augmentations": {"reverb": 0.6, "clipping": 0.25}},
])
def test_a_quota_on_a_flag_holds_whatever_else_was_applied(pool_table: pa.Table, quotas: dict) -> None:
    K = 0.3 * table_hours(pool_table)
    params = make_params(K_hours=K, **{"diversity.min_cosine": 0.0})
    sel = run_selection(pool_table, params, quotas=quotas)
    longest = float(sel.pool.hours.max())
    for flag, share in quotas["augmentations"].items():
        has = sel.pool.flags.has(flag)
        got = float(sel.pool.hours[sel.selected & has].sum())
        # the plan gives the flag exactly its share; the greedy keeps every slice within one utterance of its
        # allocation, so the flag's slices lag by at most one utterance per slice of the others
        planned = sum(sel.plan.feasible[s] for s, v in enumerate(sel.pool.slice_values) if f"+{flag}" in v)
        others = sum(f"-{flag}" in v for v in sel.pool.slice_values)
        assert planned == pytest.approx(share * K, rel=1e-9)
        assert got >= share * K - others * longest, (flag, got, share * K)
        assert got >= (share - 0.01) * K
    for col, shares in quotas.items():
        if col == "augmentations":
            continue
        labels = sel.pool.columns[col].to_numpy(zero_copy_only=False)
        for value, share in shares.items():
            got = float(sel.pool.hours[sel.selected & (labels == value)].sum())
            assert got == pytest.approx(share * K, abs=2 * longest), (value, got)
    # without the flag quota, reverberated hours follow the pool's share, far below the quota
    plain = run_selection(pool_table, params, quotas={k: v for k, v in quotas.items() if k != "augmentations"})
    got, pool_share = _reverb_hours(plain)
    assert pool_share < 0.55 and got < 0.6 * K


def test_raking_is_a_no_op_without_empty_combinations(pool_table: pa.Table) -> None:
    """distortion x language has every combination: the product plan is kept bit for bit."""
    quotas = {"distortion": {"noise": 0.5}, "language": {"en": 0.4}}
    pool = load_pool(pool_table, ["distortion", "language"])
    plan = plan_quotas(pool, np.ones(pool.n, dtype=bool), 1.0, quotas)
    values = np.asarray(pool.slice_values, dtype=object)
    supply = pool.slice_hours()
    # product of the column shares, each cell split by supply: noise 0.5, en 0.4 of it
    cell = (values[:, 0] == "noise") & (values[:, 1] == "en")
    assert plan.fraction[cell].sum() == pytest.approx(0.2, rel=1e-12)
    assert plan.fraction[cell] == pytest.approx(0.2 * supply[cell] / supply[cell].sum(), rel=1e-12)


def test_unlisted_values_share_the_rest_by_hours(pool_table: pa.Table) -> None:
    pool = load_pool(pool_table, ["distortion"])
    plan = plan_quotas(pool, np.ones(pool.n, dtype=bool), 1.0, {"distortion": {"noise": 0.5}})
    values = np.asarray(pool.slice_values, dtype=object).ravel()
    supply = pool.slice_hours()
    rest = values != "noise"
    assert rest.sum() >= 2 and len(set(np.round(supply[rest], 9))) > 1  # unequal supplies: the rule shows
    assert plan.fraction[~rest].sum() == pytest.approx(0.5, rel=1e-12)
    assert plan.fraction[rest] == pytest.approx(0.5 * supply[rest] / supply[rest].sum(), rel=1e-12)


def test_flag_quota_naming_no_flag_of_the_pool_is_an_error(pool_table: pa.Table) -> None:
    params = make_params(K_hours=0.1)
    with pytest.raises(Exception, match=r"select.quotas.augmentations names 'reverbb' \(did you mean 'reverb'\?\).*"
                                        "valid choices: bandwidth_limitation, clipping, codec, noise"):
        run_selection(pool_table, params, quotas={"augmentations": {"reverbb": 0.5}})
    old = pool_table.drop_columns(["augmentations"])
    with pytest.raises(Exception, match="lacks the 'augmentations' column.*re-run the score stage"):
        run_selection(old, params, quotas={"augmentations": {"reverb": 0.5}})


# ---------------------------------------------------------------- through the select CLI

@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multilabel_stage")
    table, _ = synthetic_scores(SyntheticSpec(n=500, dim=16, seed=2, rows_per_source=40))
    write_table(table, root / "scores.parquet")
    params = yaml.safe_load(TEST_PARAMS.read_text())
    params["select"]["K_hours"] = 0.3
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    quotas = {"distortion": params["select"]["quotas"]["distortion"], "augmentations": {"reverb": 0.75}}
    (root / "quotas.yaml").write_text(yaml.safe_dump(quotas))
    return root


def select(stage: Path, out: str, *extra: str, quotas: str = "params.yaml") -> tuple[int, Path]:
    dest = stage / out
    argv = ["--config", str(stage / "params.yaml"), "--scores", str(stage / "scores.parquet"),
            "--quotas", str(stage / quotas), "--out", str(dest / "curated.csv"),
            "--metrics", str(dest / "select.json"), "--plots-dir", str(dest / "plots"), *extra]
    return main(argv), dest


def _flagged(frame: pd.DataFrame, flag: str) -> pd.Series:
    return frame["augmentations"].str.split("+").apply(lambda flags: flag in flags)


def test_select_cli_holds_a_flag_quota_and_reports_hours_per_flag(stage: Path) -> None:
    code, out = select(stage, "flag", quotas="quotas.yaml")
    assert code == 0
    frame = pd.read_csv(out / "curated.csv")
    metrics = json.loads((out / "select.json").read_text())
    reverb = _flagged(frame, "reverb")
    longest = frame["hours"].max()
    assert frame.loc[reverb, "hours"].sum() >= 0.75 * 0.3 - longest
    # slices carry the flag dimension; the curated list carries the flags, consistent with the label
    assert set(frame["slice"].str.split("/").str[1]) == {"+reverb", "-reverb"}
    assert (frame["slice"].str.endswith("/+reverb") == reverb).all()
    assert all(label in flags.split("+") for label, flags in zip(frame["distortion"], frame["augmentations"],
                                                                  strict=True))
    cov = metrics["coverage"]
    flag = cov["augmentations"]["reverb"]
    assert flag["selected_hours"] == pytest.approx(frame.loc[reverb, "hours"].sum(), rel=1e-6)
    assert flag["quota_fraction"] == 0.75 and flag["planned_hours"] == pytest.approx(0.225)
    assert flag["shortfall_hours"] <= longest
    label = cov["distortion"]["reverb"]
    assert label["selected_hours"] == pytest.approx(frame.loc[frame["distortion"] == "reverb", "hours"].sum(),
                                                    rel=1e-6)
    assert label["selected_hours"] < 0.5 * flag["selected_hours"]  # "reverb and nothing else" is a minority
    assert sum(v["selected_hours"] for v in cov["distortion"].values()) == pytest.approx(metrics["hours_selected"])
    assert "quota_fraction" not in cov["augmentations"]["clipping"]


def test_select_cli_takes_a_flag_quota_as_an_override(stage: Path) -> None:
    code, out = select(stage, "override", "select.quotas.augmentations={reverb: 0.75}")
    assert code == 0
    assert select(stage, "file", quotas="quotas.yaml")[0] == 0  # the same quotas from a file: the same list
    assert (out / "curated.csv").read_bytes() == (stage / "file" / "curated.csv").read_bytes()
    frame = pd.read_csv(out / "curated.csv")
    assert frame.loc[_flagged(frame, "reverb"), "hours"].sum() >= 0.75 * 0.3 - frame["hours"].max()


def test_select_cli_filters_on_a_flag(stage: Path) -> None:
    code, out = select(stage, "filtered", "data.filters.augmentations=[reverb]")
    assert code == 0
    frame = pd.read_csv(out / "curated.csv")
    metrics = json.loads((out / "select.json").read_text())
    assert _flagged(frame, "reverb").all() and set(frame["distortion"]) > {"reverb"}
    table = pd.read_parquet(stage / "scores.parquet", columns=["augmentations"])
    without = int((~table["augmentations"].apply(lambda f: "reverb" in list(f))).sum())
    assert metrics["excluded"]["filtered_augmentations"] == without


@pytest.mark.parametrize(("override", "message"), [
    ("data.filters.languages=[eng]", "data.filters.languages lists 'eng' (did you mean 'en'?), which no row of "
     "scores file '{scores}' has; valid choices: de, en, es, fr, zh"),
    ("data.filters.augmentations=[reverb, echo]", "data.filters.augmentations lists 'echo', which no row"),
    ("data.filters.distortions=[noise, speech_free]", "valid choices: bandwidth_limitation, clipping, codec, noise, "
     "packet_loss, reverb, wind"),
    ("data.filters.sample_rates=[16000]", None),
])
def test_select_cli_rejects_filter_values_no_row_has(stage: Path, override: str, message: str | None,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out = select(stage, "bad", override)
    err = capsys.readouterr().err
    if message is None:  # a value the pool has is fine
        assert code == 0
        return
    assert code == 2 and message.format(scores=stage / "scores.parquet") in err
    assert not (out / "curated.csv").exists()


# ---------------------------------------------------------------- manifest side (score / probe stages)

def test_manifest_filters_use_the_flags_and_reject_unknown_values() -> None:
    df = pd.DataFrame([
        {"utt_id": "a", "duration_sec": 1.0, "language": "en", "sr": 16000, "distortion": "clipping",
         "augmentations": [CLIP], "noise_id": "n1", "rir_id": "r1"},
        {"utt_id": "b", "duration_sec": 1.0, "language": "en", "sr": 16000, "distortion": "reverb",
         "augmentations": [], "noise_id": "n1", "rir_id": "r1"},
        {"utt_id": "c", "duration_sec": 1.0, "language": "de", "sr": 16000, "distortion": "noise",
         "augmentations": [], "noise_id": "n2", "rir_id": None},
    ])
    kept, dropped = apply_filters(df, Filters(augmentations=["reverb"]))
    assert kept["utt_id"].tolist() == ["a", "b"] and dropped == {"augmentations": 1}
    kept, _ = apply_filters(df, Filters(distortions=["reverb"]))
    assert kept["utt_id"].tolist() == ["b"]
    with pytest.raises(FilterError, match=r"languages lists 'eng' \(did you mean 'en'\?\), which no row of "
                                          r"manifest 'x.jsonl' has; valid choices: de, en"):
        apply_filters(df, Filters(languages=["eng"]), where="manifest 'x.jsonl'")
    assert isinstance(flags_from_lists([]), FlagMatrix)
