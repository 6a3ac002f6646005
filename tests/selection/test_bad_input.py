"""Bad scores tables: a clear error naming the file and the fix, or a counted skip, decided before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curator.contract.data import Filters
from curator.contract.filters import FilterError
from curator.contract.scores import write_table
from curator.selection.pool import PoolError, load_pool
from curator.selection.report import TruthError, read_truth
from curator.selection.synthetic import SyntheticSpec, synthetic_scores

from .conftest import make_params, run_selection, table_hours

N = 200


@pytest.fixture
def table() -> pa.Table:
    return synthetic_scores(SyntheticSpec(n=N, dim=8, seed=5))[0]


def write(table: pa.Table, tmp_path: Path) -> Path:
    path = tmp_path / "scores.parquet"
    write_table(table, path)
    return path


def set_values(table: pa.Table, column: str, rows: list[int], value: object) -> pa.Table:
    values = table[column].to_pylist()
    for r in rows:
        values[r] = value
    return table.set_column(table.schema.get_field_index(column), column, pa.array(values, table[column].type))


def test_missing_file_says_run_the_score_stage(tmp_path: Path) -> None:
    with pytest.raises(PoolError, match=r"does not exist; run the score stage"):
        load_pool(tmp_path / "nope.parquet", ["distortion"])


def test_missing_columns_are_named(table: pa.Table, tmp_path: Path) -> None:
    path = write(table.drop_columns(["loss_proxy", "sr"]), tmp_path)
    with pytest.raises(PoolError, match=r"scores\.parquet' lacks column\(s\) sr, loss_proxy"):
        load_pool(path, ["distortion"])


def test_quality_column_needed_only_when_a_gate_is_on(table: pa.Table, tmp_path: Path) -> None:
    path = write(table.drop_columns(["mos_dns"]), tmp_path)
    assert load_pool(path, ["distortion"]).mos is None
    with pytest.raises(PoolError, match="mos_dns is read by the quality gate"):
        load_pool(path, ["distortion"], quality_columns=["mos_dns"])


def test_duplicate_ids_are_an_error(table: pa.Table, tmp_path: Path) -> None:
    dup = set_values(table, "utt_id", [7], table["utt_id"][3].as_py())
    with pytest.raises(PoolError, match=r"1 duplicate utt_id\(s\), e\.g\. \['utt003'\]"):
        load_pool(write(dup, tmp_path), ["distortion"])


def test_non_ok_status_rows_are_skipped_and_counted(table: pa.Table) -> None:
    bad = set_values(table, "status", [1, 2, 3], "decode_error")
    pool = load_pool(bad, ["distortion"])
    assert pool.n == N - 3 and pool.excluded == {"status_not_ok": 3}
    assert load_pool(table.drop_columns(["status"]), ["distortion"]).n == N


def test_a_few_nan_scores_are_skipped_many_are_an_error(table: pa.Table) -> None:
    few = set_values(table, "loss_proxy", [0], float("nan"))
    pool = load_pool(few, ["distortion"], max_invalid_fraction=0.01)
    assert pool.n == N - 1 and pool.excluded == {"invalid_loss_proxy": 1}
    many = set_values(table, "loss_proxy", list(range(10)), float("inf"))
    with pytest.raises(PoolError, match=r"10 of 200 status-ok rows have a missing, NaN or infinite 'loss_proxy'"):
        load_pool(many, ["distortion"], max_invalid_fraction=0.01)


def test_unusable_embeddings_are_skipped_and_counted(table: pa.Table) -> None:
    emb = table["ssl_embed"].combine_chunks().flatten().to_numpy().reshape(N, -1).copy()
    emb[4] = np.nan
    col = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
    pool = load_pool(table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed", col), ["distortion"],
                     max_invalid_fraction=0.05)
    assert pool.excluded == {"invalid_embedding": 1} and pool.n == N - 1
    assert np.allclose(np.linalg.norm(pool.emb, axis=1), 1.0, atol=1e-5)


def test_variable_length_list_embeddings_work_and_ragged_ones_fail(table: pa.Table) -> None:
    lists = pc.cast(table["ssl_embed"], pa.list_(pa.float32()))
    as_list = table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed", lists)
    assert load_pool(as_list, ["distortion"]).emb.shape == (N, 8)
    ragged = as_list["ssl_embed"].to_pylist()
    ragged[9] = ragged[9][:5]
    bad = as_list.set_column(as_list.schema.get_field_index("ssl_embed"), "ssl_embed",
                             pa.array(ragged, pa.list_(pa.float32())))
    with pytest.raises(PoolError, match="different lengths"):
        load_pool(bad, ["distortion"])


def test_filters_and_an_empty_pool(table: pa.Table) -> None:
    pool = load_pool(table, ["distortion"], Filters(languages=["en"], sample_rates=[16000]))
    kept = pool.columns.to_pandas()
    assert set(kept["language"]) == {"en"} and set(kept["sr"]) == {16000}
    assert pool.excluded["filtered_language"] > 0
    # a value some row has, but only rows that failed scoring: the pool is empty, and says so
    wind = pc.equal(table["distortion"], "wind")
    failed = table.set_column(table.schema.get_field_index("status"), "status",
                              pc.if_else(wind, "decode_error", table["status"]))
    with pytest.raises(PoolError, match="no usable rows left.*widen data.filters"):
        load_pool(failed, ["distortion"], Filters(distortions=["wind"]))


def test_a_filter_value_no_row_has_is_an_error_naming_the_valid_choices(table: pa.Table) -> None:
    with pytest.raises(FilterError, match=r"data.filters.distortions lists 'speech_free', which no row of scores "
                       r"file '<table>' has; valid choices: bandwidth_limitation, clipping, codec, noise, "
                       r"packet_loss, reverb, wind"):
        load_pool(table, ["distortion"], Filters(distortions=["speech_free"]))
    # every unknown value of every filter at once, with a did-you-mean; one typo among good values is enough
    with pytest.raises(FilterError, match=r"languages lists 'eng' \(did you mean 'en'\?\).*de, en, es, fr, zh; "
                       r"data.filters.augmentations lists 'reverbb' \(did you mean 'reverb'\?\)"):
        load_pool(table, ["distortion"], Filters(languages=["de", "eng"], augmentations=["reverb", "reverbb"]))
    with pytest.raises(FilterError, match=r"sample_rates lists 8000.*valid choices: 16000, 22050"):
        load_pool(table.filter(pc.is_in(table["sr"], pa.array([16000, 22050]))), ["distortion"],
                  Filters(sample_rates=[8000, 16000]))


def test_max_hours_caps_the_pool_deterministically(table: pa.Table) -> None:
    cap = 0.5 * table_hours(table)
    a = load_pool(table, ["distortion"], Filters(max_hours=cap), seed=1)
    b = load_pool(table, ["distortion"], Filters(max_hours=cap), seed=1)
    assert a.hours.sum() <= cap and np.array_equal(a.utt_id, b.utt_id)
    assert a.excluded["filtered_max_hours"] == N - a.n


def test_budget_above_the_pool_is_clipped_and_reported(table: pa.Table) -> None:
    sel = run_selection(table, make_params(K_hours=10 * table_hours(table), **{"diversity.min_cosine": 0.0}))
    assert sel.plan.clipped and sel.selected.all()


def test_gate_that_removes_everything_is_an_error(table: pa.Table) -> None:
    with pytest.raises(PoolError, match="lower select.quality_gate.min_score"):
        run_selection(table, make_params(K_hours=0.1, **{"quality_gate.min_score": 5.0}))


def test_truth_file_rules(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("utt_id,imperfect,defect\n")
    assert read_truth(empty) is None and read_truth(None) is None
    with pytest.raises(TruthError, match="does not exist; omit --truth"):
        read_truth(tmp_path / "absent.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("utt_id,imperfect,defect\na,0,\nb,yes,noise\n")
    with pytest.raises(TruthError, match=r"bad\.csv' row 3: imperfect must be 0 or 1, got 'yes'"):
        read_truth(bad)
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("id,flag\na,0\n")
    with pytest.raises(TruthError, match=r"lacks column\(s\) utt_id, imperfect"):
        read_truth(wrong)


def test_noise_only_rows_need_no_mos_and_pass_the_gate(table: pa.Table) -> None:
    table = set_values(table, "mos_dns", [0, 1, 2], float("nan"))
    with pytest.raises(PoolError, match="'mos_dns'"):
        load_pool(table, ["distortion"], quality_columns=["mos_dns"])
    flags = [i in (0, 1, 2) for i in range(N)]
    marked = set_values(table, "mos_dns", [5], 5.0).append_column("speech_free", pa.array(flags))
    pool = load_pool(marked, ["distortion"], quality_columns=["mos_dns"])
    assert pool.n == N and pool.speech_free.sum() == 3
    sel = run_selection(marked, make_params(name="mos_threshold", K_hours=table_hours(table),
                                            **{"quality_gate.min_score": 4.9, "mos_threshold.min_score": 4.9,
                                               "diversity.min_cosine": 0.0}))
    assert sel.selected[pool.speech_free].all() and not sel.gated[pool.speech_free].any()
    assert sel.selected[~pool.speech_free].sum() == 1


def test_gate_that_leaves_only_speech_free_rows_is_an_error(table: pa.Table) -> None:
    marked = table.append_column("speech_free", pa.array([i < 3 for i in range(N)]))
    with pytest.raises(PoolError, match="no speech row .* is eligible.*only the 3 speech-free rows are left"):
        run_selection(marked, make_params(K_hours=0.1, **{"quality_gate.min_score": 5.0}))


def test_budget_below_the_shortest_utterance_is_an_error(table: pa.Table) -> None:
    shortest = float(np.min(table["duration_sec"].to_numpy())) / 3600
    with pytest.raises(PoolError, match="below the shortest eligible utterance"):
        run_selection(table, make_params(K_hours=0.5 * shortest))


def test_absurd_durations_are_skipped_and_counted(table: pa.Table) -> None:
    bad = set_values(table, "duration_sec", [11], 1e9)
    sel = run_selection(bad, make_params(K_hours=0.5 * table_hours(table), **{"diversity.min_cosine": 0.0}))
    assert sel.pool.excluded == {"invalid_duration_sec": 1}
    assert sel.pool.hours[sel.selected].sum() >= sel.plan.budget - sel.pool.hours.max()
    assert not [w for w in sel.warnings if w.code == "budget_unused"]


def test_a_long_utterance_that_stops_the_greedy_is_a_warning(table: pa.Table) -> None:
    long = set_values(table, "duration_sec", [11], 3 * 3600.0).set_column(
        table.schema.get_field_index("loss_proxy"), "loss_proxy",
        pa.array([1.0 if i == 11 else v for i, v in enumerate(table["loss_proxy"].to_pylist())]))
    sel = run_selection(long, make_params(K_hours=0.5 * table_hours(table), **{"diversity.min_cosine": 0.0}))
    codes = [w.code for w in sel.warnings]
    assert "budget_unused" in codes and "utt011" in sel.warnings[codes.index("budget_unused")].message


def test_all_zero_embeddings_are_invalid(table: pa.Table) -> None:
    emb = table["ssl_embed"].combine_chunks().flatten().to_numpy().reshape(N, -1).copy()
    emb[[2, 9]] = 0.0
    col = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
    zeroed = table.set_column(table.schema.get_field_index("ssl_embed"), "ssl_embed", col)
    pool = load_pool(zeroed, ["distortion"], max_invalid_fraction=0.05)
    assert pool.excluded == {"invalid_embedding": 2} and pool.n == N - 2
    with pytest.raises(PoolError, match=r"2 of \d+ status-ok rows have a missing, non-finite or all-zero 'ssl_embed'"):
        load_pool(zeroed, ["distortion"], max_invalid_fraction=0.0)


def test_quota_values_absent_from_the_pool_are_a_warning_with_a_hint(table: pa.Table) -> None:
    quotas = {"distortion": {"nosie": 0.3, "reverb": 0.2}}
    sel = run_selection(table, make_params(K_hours=0.2 * table_hours(table), quotas=quotas,
                                           **{"diversity.min_cosine": 0.0}))
    (warning,) = [w for w in sel.warnings if w.code == "quota_values_absent"]
    assert "'nosie' (did you mean 'noise'?)" in warning.message and warning.count == 1


def test_a_gate_that_removes_everything_says_how_many_and_by_which_rule(table: pa.Table) -> None:
    speech = table.filter(pc.invert(table["speech_free"])) if "speech_free" in table.column_names else table
    params = make_params(**{"quality_gate.column": "mos_dns", "quality_gate.min_score": 10.0})
    with pytest.raises(PoolError, match=rf"\({speech.num_rows} rows\): the quality gate \(mos_dns < 10\) removed "
                                        rf"{speech.num_rows}, strategy 'cvar' the other 0; lower"):
        run_selection(speech, params)
