"""The efficacy report on synthetic runs: pairing, seeds in the interval, gate rows, curves, the files."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curator.config import ConfigError, load_params, load_section
from curator.evaluation.efficacy.cli import main as efficacy_main
from curator.evaluation.efficacy.params import CompareParams, ProfileParams, eval_dir, run_id
from curator.evaluation.efficacy.report import (
    build_report,
    contrast,
    contrast_rows,
    load_runs,
    markdown,
    plot_contrasts,
)

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
N_UTTS = 60


def params(**kw) -> CompareParams:
    base = dict(variants={"random": ["select.name=random"], "cvar": ["select.name=cvar"],
                          "cvar_nogate": ["select.name=cvar"]},
                budgets=[0.25, 0.5], seeds=[0, 1], baseline="random", gate_pairs={"cvar": "cvar_nogate"},
                profile="mini", profiles={"mini": ProfileParams()}, headline_metrics=["pesq", "si_sdr"])
    return CompareParams(**{**base, **kw})


def flags(i: int) -> str:
    """Even rows: reverb only; odd rows: noise, reverberant in every other one; every third row also clipped."""
    f = {"reverb"} if i % 2 == 0 else {"noise", "reverb"} if i % 4 == 1 else {"noise"}
    return "+".join(sorted(f | ({"clipping"} if i % 3 == 0 else set())))


def write_runs(root: Path, p: CompareParams, gain: dict[str, float], only: str | None = None) -> None:
    """Per-utterance files of every run; a variant's ``gain`` applies to every row, or to the rows with flag
    ``only``."""
    rng = np.random.default_rng(0)
    base = rng.uniform(1.5, 3.0, N_UTTS)
    aug = [flags(i) for i in range(N_UTTS)]
    where = np.array([only is None or only in a.split("+") for a in aug])
    for v in p.variants:
        for b in p.budgets:
            for s in p.seeds:
                noise = np.random.default_rng(zlib.crc32(f"{v}{b}{s}".encode())).normal(0, 0.02, N_UTTS)
                pesq = base + gain.get(v, 0.0) * where + noise + 0.1 * b
                out = eval_dir(str(root), v, b, s)
                out.mkdir(parents=True)
                pd.DataFrame({"split": "test", "utt_id": [f"u{i:03d}" for i in range(N_UTTS)],
                              "distortion": np.where(np.arange(N_UTTS) % 2, "noise", "reverb"),
                              "augmentations": aug, "pesq": pesq, "si_sdr": 5 * pesq}).to_parquet(out / "per_utt.parquet")


def test_contrast_pairs_utterances_and_widens_with_seed_disagreement():
    rng = np.random.default_rng(1)
    base = rng.normal(2.0, 0.6, (1, 80))
    same = contrast(base.repeat(2, 0), base.repeat(2, 0), True, 500, 0, 0.95, 0.1)
    assert same.diff == 0 and same.verdict == "no evidence"
    up = contrast(base.repeat(2, 0) + 0.05, base.repeat(2, 0), True, 500, 0, 0.95, 0.1)
    assert up.verdict == "better" and up.ci_low > 0  # 0.05 against a 0.6 spread: only pairing resolves it
    seeds_disagree = np.vstack([base + 0.3, base - 0.2])
    wide = contrast(seeds_disagree, base.repeat(2, 0), True, 500, 0, 0.95, 0.1)
    assert wide.ci_high - wide.ci_low > 0.2 and wide.verdict == "no evidence"


def test_contrast_point_figures_by_hand():
    # A: 2 seeds x 5 utterances, B: 1 seed; utterance 4 failed in one of A's seeds, utterance 3 in B's
    a = np.array([[1.0, 2.0, 3.0, 4.0, np.nan], [3.0, 2.0, 1.0, 4.0, 5.0]])
    b = np.array([[1.0, 1.0, 1.0, np.nan, 5.0]])
    c = contrast(a, b, True, 200, 0, 0.95, 0.34)  # 3 utterances kept: A's seed means 2, 2, 2 against B's 1, 1, 1
    assert (c.n_utts, c.n_dropped) == (3, 2)
    assert (c.mean_a, c.mean_b, c.diff) == pytest.approx((2.0, 1.0, 1.0))
    # CVaR at 0.34 of 3 utterances: the worst 2 (lowest, higher is better)
    a2 = np.array([[4.0, 2.0, 0.0]])
    b2 = np.array([[1.0, 1.0, 1.0]])
    assert contrast(a2, b2, True, 200, 0, 0.95, 0.34).tail_diff == pytest.approx(1.0 - 1.0)
    assert contrast(a2, b2, False, 200, 0, 0.95, 0.34).tail_diff == pytest.approx(3.0 - 1.0)  # worst = highest


def test_report_rows_curves_and_resolution(tmp_path: Path):
    p = params(pairs={"cvar_nogate": "cvar"})
    write_runs(tmp_path, p, {"cvar": 0.2})
    runs = load_runs(p, lambda v, b, s: eval_dir(str(tmp_path), v, b, s))
    report = build_report(p, runs, n_boot=300, seed=0, confidence=0.95, tail=0.1, min_slice_utts=10,
                          correction="bh")
    assert set(report["vs_baseline"]) == {"0.25", "0.5"}
    assert report["vs_baseline"]["0.5"]["cvar"]["pesq"]["verdict"] == "better"
    assert report["vs_baseline"]["0.5"]["cvar"]["pesq"]["diff"] == pytest.approx(0.2, abs=0.02)
    assert report["vs_baseline"]["0.5"]["cvar_nogate"]["pesq"]["verdict"] == "no evidence"
    # the headline table as one family per metric: the real gain survives Benjamini-Hochberg
    cells = [c["pesq"] for per in report["vs_baseline"].values() for c in per.values()]
    assert [c["family_verdict"] for c in cells] == ["better", "no evidence", "better", "no evidence"]
    assert all(c["family_q"] >= c["p_value"] for c in cells)
    assert "Marks that hold with Benjamini-Hochberg over the table's 4 comparisons per metric, q < 0.05: " \
           "pesq: cvar K=0.25 +, cvar K=0.5 +;" in markdown(report)
    assert report["gate"]["0.25"]["cvar_vs_cvar_nogate"]["pesq"]["verdict"] == "better"
    # compare.pairs: any two variants, the same paired contrast (here the gate's, the other way round)
    other = report["pairs"]["0.25"]["cvar_nogate_vs_cvar"]["pesq"]
    assert other["verdict"] == "worse" and other["diff"] == pytest.approx(
        -report["gate"]["0.25"]["cvar_vs_cvar_nogate"]["pesq"]["diff"])
    assert "## other paired comparisons" in markdown(report) and "| cvar_nogate_vs_cvar | 0.25 |" in markdown(report)
    assert report["curve"]["random"]["0.5"]["pesq"]["mean"] > report["curve"]["random"]["0.25"]["pesq"]["mean"]
    assert set(report["slices"]["0.5"]["cvar"]["distortion"]) == {"noise", "reverb"}
    assert 0 < report["resolution"]["pesq"] < 0.05
    # the spread of the seeds' means (not of every utterance's value): the seeds differ by noise of sd 0.02 only
    seed_means = [runs[(runs.variant == "random") & (runs.budget == 0.5) & (runs.seed == s)]["pesq"].mean()
                  for s in (0, 1)]
    assert report["seed_spread"]["random"]["0.5"]["pesq"] == pytest.approx(np.std(seed_means), abs=1e-6)
    # the contrasts plot: one row per contrast of the tables, sections in their order
    rows = contrast_rows(report)
    assert [label for _, label, _ in rows][:2] == ["cvar @ K=0.25", "cvar_nogate @ K=0.25"]
    assert [section for section, _, _ in rows] == ["vs random"] * 4 + ["gate on vs off"] * 2 + ["other pairs"] * 2
    assert rows[3][2]["pesq"] is report["vs_baseline"]["0.5"]["cvar_nogate"]["pesq"]
    png = plot_contrasts(report, tmp_path)
    assert png.name == "contrasts.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_slices_by_flag_overlap_and_find_where_a_variant_gains(tmp_path: Path):
    """A gain on the reverberant rows only: the ``reverb`` flag slice (reverb-only rows and the reverberant noise
    rows) shows all of it, the flag-free rest none, the primary-label slices a mixture; slices overlap."""
    p = params()
    write_runs(tmp_path, p, {"cvar": 0.2}, only="reverb")
    report = build_report(p, load_runs(p, lambda v, b, s: eval_dir(str(tmp_path), v, b, s)), n_boot=300, seed=0,
                          confidence=0.95, tail=0.1, min_slice_utts=10, correction="bh")
    by_flag = report["slices"]["0.5"]["cvar"]["augmentations"]
    assert {k: v["n"] for k, v in by_flag.items()} == {"clipping": 20, "noise": 30, "reverb": 45}
    assert by_flag["reverb"]["pesq"]["diff"] == pytest.approx(0.2, abs=0.02)
    assert by_flag["reverb"]["pesq"]["verdict"] == "better" and by_flag["reverb"]["si_sdr"]["verdict"] == "better"
    noise_label = report["slices"]["0.5"]["cvar"]["distortion"]["noise"]["pesq"]
    assert noise_label["diff"] == pytest.approx(0.1, abs=0.02)  # half of the noise-labelled rows reverberate
    assert by_flag["noise"]["pesq"]["diff"] == pytest.approx(0.1, abs=0.02)
    text = markdown(report, ["pesq"])
    assert "## pesq difference against `random` per augmentations" in text
    row = next(line for line in text.splitlines() if line.startswith("| reverb | 45 | 0.5 |"))
    cells = [c.strip() for c in row.strip("|").split(" | ")[3:]]  # the variants' cells: cvar, cvar_nogate
    assert cells[0].endswith("] +") and cells[1].endswith("]")  # cvar better; cvar_nogate no evidence
    tail_rows = text.split("(CVaR) difference")[1].split("##")[0].splitlines()
    cvar_tail = next(line for line in tail_rows if line.startswith("| cvar | 0.5 |"))
    assert cvar_tail.split(" | ")[2].endswith("] +")  # the worst-tail gain is marked too
    assert "after Benjamini-Hochberg over the augmentations values" in text
    # eval.slice_verdicts.min_utts: a slice of fewer utterances keeps its figures but gets no verdict or mark
    strict = build_report(p, load_runs(p, lambda v, b, s: eval_dir(str(tmp_path), v, b, s)), n_boot=300, seed=0,
                          confidence=0.95, tail=0.1, min_slice_utts=25, correction="bh")
    clipping = strict["slices"]["0.5"]["cvar"]["augmentations"]["clipping"]["pesq"]
    assert clipping["verdict"] == "too few utterances" and clipping["q_value"] is None
    assert clipping["diff"] == by_flag["clipping"]["pesq"]["diff"]
    assert strict["slices"]["0.5"]["cvar"]["augmentations"]["reverb"]["pesq"]["verdict"] == "better"
    row = next(line for line in markdown(strict, ["pesq"]).splitlines() if line.startswith("| clipping | 20 | 0.5 |"))
    assert all(c.strip().endswith("]") for c in row.strip("|").split(" | ")[3:])


def test_cli_report_writes_json_markdown_and_plot(tmp_path: Path, monkeypatch):
    cfg = load_params(TEST_PARAMS, [f"data.root={tmp_path / 'data'}"])
    p = load_section("compare", cfg=cfg)
    write_runs(tmp_path / "data", p, {"cvar": 0.1})
    (tmp_path / "params.yaml").write_text(__import__("yaml").safe_dump(cfg, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    assert efficacy_main(["report", "--config", "params.yaml"]) == 0
    report = json.loads((tmp_path / "metrics/compare.json").read_text())
    assert set(report["vs_baseline"]["0.25"]) == set(p.variants) - {p.baseline}
    assert "quality gate" in (tmp_path / "metrics/compare.md").read_text()
    assert (tmp_path / "metrics/plots/compare/learning_curve.png").stat().st_size > 0
    assert (tmp_path / "metrics/plots/compare/contrasts.png").stat().st_size > 0


def test_missing_runs_and_bad_params_are_named(tmp_path: Path, capsys):
    with pytest.raises(ConfigError, match="select.key=value"):
        params(variants={"random": ["train.max_steps=1"]})
    with pytest.raises(ConfigError, match="compare.baseline"):
        params(baseline="nope")
    p = params()
    with pytest.raises(Exception, match=run_id("random", 0.25, 0).replace(".", r"\.").split("_s")[0]):
        load_runs(p, lambda v, b, s: eval_dir(str(tmp_path), v, b, s))
    assert efficacy_main(["train", "--config", str(TEST_PARAMS), "--variant", "cvar"]) == 2
    assert "needs --budget, --seed" in capsys.readouterr().err
