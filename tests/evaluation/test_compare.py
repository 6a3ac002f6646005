"""``curator compare``: paired differences with intervals, verdicts, slices, the official ranking, the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curator.evaluation.compare import CompareError, System, compare, main, markdown
from curator.evaluation.metrics import METRICS, compute_metrics

TEST_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"
SR = 16000


def write_system(root: Path, name: str, columns: dict[str, list[float]], utts: list[str],
                 distortion: list[str] | None = None) -> Path:
    path = root / name / "per_utt.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame({"split": "test", "utt_id": utts, "distortion": distortion or ["noise"] * len(utts),
                  **columns}).to_parquet(path)
    return path


def test_identical_systems_give_no_evidence_on_every_metric(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    utts = [f"u{i}" for i in range(40)]
    cols = {"pesq": rng.uniform(1.5, 3.5, 40).tolist(), "estoi": rng.uniform(0.5, 0.9, 40).tolist(),
            "si_sdr": rng.normal(8, 4, 40).tolist()}
    a = write_system(tmp_path, "a", cols, utts)
    b = write_system(tmp_path, "b", cols, utts)
    out = tmp_path / "c.json"
    assert main(["--config", str(TEST_PARAMS), str(a), str(b), "--json", str(out), "--png",
                 str(tmp_path / "c.png")]) == 0
    result = json.loads(out.read_text())
    blocks = result["systems"]["b"]["metrics"]
    assert set(blocks) == {"pesq", "estoi", "si_sdr"}
    assert all(v["verdict"] == "no evidence" and v["improvement"] == 0 for v in blocks.values())
    text = capsys.readouterr().out
    assert "## b vs a" in text and max(len(line) for line in text.splitlines()) <= 120
    assert (tmp_path / "c.png").stat().st_size > 0


def _speechlike(rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    env = 0.5 * (1 + np.sin(2 * np.pi * 3 * t))
    return (env * sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (180, 360, 720, 1400))
            ).astype(np.float32) * 0.1


def test_the_clean_reference_beats_the_noisy_input_everywhere() -> None:
    """Real metrics on real signals: 'system' = the clean reference itself, baseline = the noisy input."""
    rng = np.random.default_rng(1)
    names = ["pesq", "estoi", "si_sdr", "lsd"]
    clean = [_speechlike(rng, SR * 2) for _ in range(12)]
    noisy = [c + rng.normal(0, 0.05, c.size).astype(np.float32) for c in clean]
    srs = np.full(len(clean), SR)
    metrics = [METRICS.get(m) for m in names]
    ref_scores = compute_metrics(metrics, clean, clean, srs, None)
    noisy_scores = compute_metrics(metrics, noisy, clean, srs, None)
    frame = lambda s: pd.DataFrame({"split": "test", "utt_id": [f"u{i}" for i in range(12)],  # noqa: E731
                                    "distortion": ["noise", "reverb"] * 6,
                                    "augmentations": ["noise", "noise+reverb", "clipping+noise"] * 4, **s})
    result = compare([System("noisy", frame(noisy_scores)), System("clean", frame(ref_scores))], "noisy", "test",
                     None, ["distortion", "augmentations"], n_boot=500, seed=0, confidence=0.95, tail=0.1,
                     min_slice_utts=5, correction="bh")
    blocks = result["systems"]["clean"]["metrics"]
    assert {m: b["verdict"] for m, b in blocks.items()} == dict.fromkeys(names, "better")  # LSD: lower is better
    assert set(result["systems"]["clean"]["slices"]["distortion"]) == {"noise", "reverb"}
    by_flag = result["systems"]["clean"]["slices"]["augmentations"]  # one overlapping slice per flag
    assert {k: v["n"] for k, v in by_flag.items()} == {"clipping": 4, "noise": 12, "reverb": 4}
    # slices under min_slice_utts (5) get no verdict; the 12-row noise slice is tested (with its family)
    assert by_flag["clipping"]["pesq"]["verdict"] == "too few utterances" and by_flag["clipping"]["pesq"]["q_value"] is None
    assert by_flag["noise"]["pesq"]["verdict"] == "better" and by_flag["noise"]["pesq"]["q_value"] < 0.05
    assert "none under 5 utterances" in markdown(result)
    # slice lines show the headline metrics (compare.headline_metrics) the comparison has, else its first three
    headline = [line for line in markdown(result, ["lsd", "estoi", "missing"]).splitlines() if "per distortion" in line]
    assert headline and "lsd " in headline[0] and "estoi " in headline[0] and "pesq " not in headline[0]
    first = [line for line in markdown(result).splitlines() if "per distortion" in line]
    assert "si_sdr " not in first[0]  # the fourth of the registry's order (estoi, lsd, pesq, si_sdr)
    assert result["ranking"]["official"]["clean"]["overall_rank"] < result["ranking"]["official"]["noisy"]["overall_rank"]


def test_only_shared_utterances_are_compared_and_counted(tmp_path: Path) -> None:
    a = System("a", pd.DataFrame({"split": "test", "utt_id": ["u1", "u2", "u3"], "pesq": [2.0, 3.0, 4.0]}))
    b = System("b", pd.DataFrame({"split": "test", "utt_id": ["u2", "u3", "u4"], "pesq": [2.0, 3.0, 1.0]}))
    result = compare([a, b], "a", "test", None, [], 200, 0, 0.95, 0.1, 10, "bh")
    assert result["n_common"] == 2 and result["rows_not_shared"] == {"a": 1, "b": 1}
    assert result["systems"]["b"]["metrics"]["pesq"]["improvement"] == pytest.approx(-1.0)


def test_errors_name_the_system(tmp_path: Path, capsys) -> None:
    a = write_system(tmp_path, "a", {"pesq": [3.0]}, ["u1"])
    b = write_system(tmp_path, "b", {"pesq": [3.0]}, ["u2"])
    assert main(["--config", str(TEST_PARAMS), str(a), str(b)]) == 2
    assert "share no utterance" in capsys.readouterr().err
    assert main(["--config", str(TEST_PARAMS), str(a), "no-such-experiment"]) == 2
    assert "'no-such-experiment' is neither" in capsys.readouterr().err
    with pytest.raises(CompareError, match="baseline 'zzz'"):
        compare([System("a", pd.DataFrame({"split": ["test"], "utt_id": ["u"], "pesq": [1.0]}))] * 1, "zzz",
                "test", None, [], 100, 0, 0.95, 0.1, 10, "bh")
