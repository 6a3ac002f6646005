"""Hostile files through the stage CLIs (issue 11): unsupported rates, NaN samples, lying durations,
multi-channel pairs, ids with spaces, and what each stage counts and names in its metrics.

One small ``folder`` tree is built per module; each test runs the CLIs in its own working folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import soundfile as sf
import yaml

from curator.datasets.cli import main as datasets_main
from curator.evaluation.cli import main as eval_main
from curator.scoring.cli import main as score_main
from curator.selection.cli import main as select_main
from curator.training.cli import main as train_main

TEST_PARAMS = Path(__file__).resolve().parent / "params.yaml"
SR = 16000
SECONDS = 1.0


def _speech(rng: np.random.Generator, sr: int, seconds: float = SECONDS) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(110, 200)
    voiced = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 8))
    return (0.3 * voiced * np.clip(np.sin(2 * np.pi * 3 * t), 0, None) ** 2).astype(np.float32)


def _pair(root: Path, split: str, name: str, rng: np.random.Generator, sr: int = SR, stereo: bool = False,
          nan: bool = False) -> None:
    """``<split>/noisy/<name>.wav`` and its ``<split>/clean/<name>.wav``."""
    clean = _speech(rng, sr)
    noise = rng.normal(0, 0.05, clean.size).astype(np.float32)
    noisy = clean + noise
    subtype = "PCM_16"
    if stereo:  # channel 1 is a loud noise-only channel, in the target too
        loud = rng.normal(0, 0.3, clean.size).astype(np.float32)
        noisy, clean = np.stack([noisy, loud], axis=1), np.stack([clean, loud], axis=1)
    if nan:
        noisy[100:200] = np.nan
        subtype = "FLOAT"
    for kind, x in (("noisy", noisy), ("clean", clean)):
        path = root / split / kind / f"{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), x, sr, subtype=subtype if kind == "noisy" else "PCM_16")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """train: 4 good pairs, one at 96 kHz, one at 11.025 kHz, a stereo pair and its mono twin (channel 0), a
    pair with NaN samples, a file name with spaces; dev and test: 2 good pairs and a NaN one each."""
    root = tmp_path_factory.mktemp("hostile") / "raw"
    rng = np.random.default_rng(0)
    for i in range(4):
        _pair(root, "train", f"good{i}", rng)
    _pair(root, "train", "r96", rng, sr=96000)
    _pair(root, "train", "r11k", rng, sr=11025)
    _pair(root, "train", "stereo", rng, stereo=True)
    x_n, _ = sf.read(str(root / "train/noisy/stereo.wav"), dtype="float32")
    x_c, _ = sf.read(str(root / "train/clean/stereo.wav"), dtype="float32")
    sf.write(str(root / "train/noisy/twin.wav"), x_n[:, 0], SR)
    sf.write(str(root / "train/clean/twin.wav"), x_c[:, 0], SR)
    _pair(root, "train", "nan", rng, nan=True)
    _pair(root, "train", "with space", rng)
    for split in ("dev", "test"):
        for i in range(2):
            _pair(root, split, f"good{i}", rng)
        _pair(root, split, "nan", rng, nan=True)
    return root


def _params(work: Path, tree: Path, **dataset: object) -> Path:
    """The tests' params pointed at ``tree`` (folder dataset) with a tiny training and evaluation profile."""
    cfg = yaml.safe_load(TEST_PARAMS.read_text())
    cfg["data"].update(dataset="folder", root=str(work / "data"))
    cfg["dataset"].update(num_workers=1, **dataset)
    cfg["dataset"]["folder"].update(root=str(tree), infer={"language_from_path": False, "distortion_from_path": False})
    cfg["train"].update(max_steps=2, val_every_steps=2, log_every_steps=1)
    cfg["train"]["model"]["options"].update(num_channels=8, num_layers=1)
    cfg["train"]["data"].update(crop_seconds=0.5, batch_size=2, max_val_utts=None)
    cfg["eval"].update(splits=["test"], metrics=["si_sdr"], plot_metrics=["si_sdr"], num_workers=0, max_utts=None)
    out = work / "params.yaml"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def _manifest(work: Path, tree: Path, **dataset: object) -> tuple[Path, dict]:
    params = _params(work, tree, **dataset)
    assert datasets_main(["--dataset_cfg", str(params), "--data_cfg", str(params), "--stage", "manifest",
                          "--metrics", str(work / "manifest.json")]) == 0
    return params, json.loads((work / "manifest.json").read_text())


def _rows(work: Path, split: str) -> dict[str, dict]:
    path = work / "data" / "manifests" / "folder" / f"{split}.jsonl"
    return {r["utt_id"]: r for r in map(json.loads, path.read_text().splitlines())}


def _write_rows(work: Path, split: str, rows: dict[str, dict]) -> None:
    path = work / "data" / "manifests" / "folder" / f"{split}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows.values()))


@pytest.fixture(scope="module")
def header_run(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The manifest stage with ``audio_check: header`` (NaN files pass), resampling and first-channel policies."""
    work = tmp_path_factory.mktemp("header_run")
    params, metrics = _manifest(work, tree, audio_check="header", rate_policy="resample", channel_policy="first")
    return work, params, metrics


def test_manifest_resamples_unsupported_rates_and_records_channel_policy(header_run):
    work, _, metrics = header_run
    train = metrics["splits"]["train"]
    policy = train["input_policy"]
    assert policy["resampled"] == 2 and policy["resampled_by_rate"] == {"11025->16000": 1, "96000->48000": 1}
    assert sorted(policy["resampled_examples"]) == ["train-noisy-r11k", "train-noisy-r96"]
    assert policy["multichannel"] == 1 and policy["multichannel_by_channels"] == {"2": 1}
    assert policy["multichannel_examples"] == ["train-noisy-stereo"]
    assert train["utterances"] == 10 and train["rejected"] == 0  # header mode: the NaN file is not decoded
    rows = _rows(work, "train")
    r96 = rows["train-noisy-r96"]
    assert r96["sr"] == 48000 and r96["custom"] == {"source_sr": 96000} and r96["duration_sec"] == pytest.approx(1.0)
    assert rows["train-noisy-r11k"]["sr"] == 16000 and rows["train-noisy-r11k"]["custom"]["source_sr"] == 11025
    assert rows["train-noisy-stereo"]["custom"] == {"channels": 2, "channel_policy": "first"}
    assert "custom" not in rows["train-noisy-good0"]
    assert train["sr"]["48000"]["n"] == 1 and "96000" not in train["sr"]


def test_folder_ids_are_safe_for_kaldi_lists(header_run):
    work, _, _ = header_run
    ids = list(_rows(work, "train"))
    assert "train-noisy-with_space" in ids
    assert not [u for u in ids if any(c.isspace() for c in u)]


def test_manifest_rejects_by_policy_with_counts_and_names(tree: Path, tmp_path: Path):
    _, metrics = _manifest(tmp_path, tree, audio_check="decode", rate_policy="reject", channel_policy="reject")
    train = metrics["splits"]["train"]
    assert train["rejected_by_reason"] == {"multichannel": 1, "nonfinite": 1, "unsupported_rate": 2}
    named = {e["utt_id"]: (e["reason"], e["path"]) for e in train["rejected_examples"]}
    assert named["train-noisy-r96"][0] == "unsupported_rate" and named["train-noisy-r96"][1].endswith("r96.wav")
    assert named["train-noisy-r11k"][0] == "unsupported_rate"
    assert named["train-noisy-stereo"][0] == "multichannel"
    assert named["train-noisy-nan"] == ("nonfinite", str(tree / "train/noisy/nan.wav"))
    assert train["utterances"] == 6 and train["input_policy"]["resampled"] == 0
    assert metrics["splits"]["test"]["rejected_by_reason"] == {"nonfinite": 1}


def test_folder_verify_names_the_files_it_rejects(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    params = _params(tmp_path, tree)
    report = tmp_path / "verify.json"
    assert datasets_main(["--dataset_cfg", str(params), "--data_cfg", str(params), "--stage", "verify",
                          "--report", str(report)]) == 1
    out = json.loads(report.read_text())
    assert out["ok"] is False
    assert f"{tree / 'train/noisy/nan.wav'}: nonfinite" in out["train"]["examples"]
    assert f"{tree / 'test/noisy/nan.wav'}: nonfinite" in out["test"]["examples"]
    assert "nan.wav: nonfinite" in capsys.readouterr().out


LIGHT_SCORING = ["score.scorers=[bandwidth, sisdr, embedding]", "score.ref_quality.weights={ref_bandwidth_ratio: 1.0}",
                 "score.loss_proxy.weights={in_sisdr: 1.0}", "score.loss_proxy.probe_path=null",
                 "score.num_workers=1", "score.min_duration_sec=0.1"]


def test_scoring_uses_decoded_length_policies_and_flags_nan(header_run, tmp_path: Path):
    work, params, _ = header_run
    rows = _rows(work, "train")
    lying = dict(rows)
    lying["train-noisy-good0"] = {**rows["train-noisy-good0"], "duration_sec": 30.0}  # 29 s of audio that is not there
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in lying.values()))
    out, metrics = tmp_path / "scores.parquet", tmp_path / "score.json"
    assert score_main(["--config", str(params), f"data.manifest={manifest}", "--out", str(out),
                       "--metrics", str(metrics), *LIGHT_SCORING]) == 0
    m = json.loads(metrics.read_text())
    assert m["duration_corrected"] == 1 and m["duration_corrected_examples"] == ["train-noisy-good0"]
    assert m["duration_corrected_hours"] == pytest.approx(29.0 / 3600, abs=1e-6)
    assert m["status_counts"] == {"nan": 1, "ok": 9}
    df = pq.read_table(out).to_pandas().set_index("utt_id")
    assert df.loc["train-noisy-good0", "duration_sec"] == pytest.approx(1.0)
    assert df.loc["train-noisy-r96", "status"] == "ok" and df.loc["train-noisy-r96", "sr"] == 48000
    assert df.loc["train-noisy-r96", "duration_sec"] == pytest.approx(1.0, abs=1e-4)
    assert df.loc["train-noisy-nan", "status"] == "nan"
    # channel 0 of the stereo pair, as the row's policy says: the same scores as its mono twin
    assert df.loc["train-noisy-stereo", "in_sisdr"] == pytest.approx(df.loc["train-noisy-twin", "in_sisdr"], abs=1e-3)

    # selection counts the decoded hours: the pool is 9 ok rows of 1 s (the manifest claimed 38 s)
    curated, sel_metrics = tmp_path / "curated.csv", tmp_path / "select.json"
    assert select_main(["--config", str(params), "--scores", str(out), "--out", str(curated), "--metrics",
                        str(sel_metrics), "--plots-dir", str(tmp_path / "plots"), "select.name=random",
                        "select.K_hours=1.0", "select.quotas={}", "select.quality_gate.min_score=null"]) == 0
    pool = json.loads(sel_metrics.read_text())["pool"]
    assert pool["rows"] == 9 and pool["hours"] == pytest.approx(9.0 / 3600, abs=1e-6)


def test_scoring_honours_the_mean_channel_policy(tree: Path, tmp_path: Path):
    params, _ = _manifest(tmp_path, tree, audio_check="header", channel_policy="mean")
    out, metrics = tmp_path / "scores.parquet", tmp_path / "score.json"
    assert score_main(["--config", str(params), "--out", str(out), "--metrics", str(metrics), *LIGHT_SCORING]) == 0
    df = pq.read_table(out).to_pandas().set_index("utt_id")
    # averaging mixes the loud noise channel into input and target alike: not the twin's scores any more
    assert abs(df.loc["train-noisy-stereo", "in_sisdr"] - df.loc["train-noisy-twin", "in_sisdr"]) > 1.0


def test_train_and_eval_skip_count_and_name_bad_utterances(tree: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]):
    """NaN files (header mode lets them through) and a foreign row at 96 kHz never reach a loss or a metric."""
    work = tmp_path
    params, _ = _manifest(work, tree, audio_check="header", rate_policy="resample", channel_policy="first")
    monkeypatch.chdir(tmp_path)
    rows = _rows(work, "train")
    rows["train-noisy-r96"] = {**rows["train-noisy-r96"], "sr": 96000}  # a manifest made elsewhere: no policy
    rows["train-noisy-r96"].pop("custom")
    gone = str(tmp_path / "moved_away" / "clean.wav")  # a clean file deleted after the manifest was built
    rows["train-noisy-gone"] = {**rows["train-noisy-good0"], "utt_id": "train-noisy-gone", "clean_path": gone}
    _write_rows(work, "train", rows)
    dev_rows = _rows(work, "dev")  # a speech-free dev row: no reference, so no validation loss
    dev_rows["dev-noisy-free"] = {**dev_rows["dev-noisy-good0"], "utt_id": "dev-noisy-free", "clean_path": None}
    _write_rows(work, "dev", dev_rows)
    test_rows = _rows(work, "test")
    test_rows["test-noisy-r96"] = {**rows["train-noisy-r96"], "utt_id": "test-noisy-r96", "split": "test"}
    _write_rows(work, "test", test_rows)
    curated = tmp_path / "curated.csv"
    curated.write_text("utt_id\n" + "".join(f"{u}\n" for u in sorted(rows)))
    assert train_main(["--config", str(params), "--curated_list", str(curated), "--exp.name", "hostile"]) == 0
    out, err = capsys.readouterr()
    assert "skip train utterance train-noisy-nan" in err and "nonfinite" in err
    assert "skip train utterance train-noisy-gone (" in err and f"missing: '{gone}' does not exist" in err
    assert "1 dev utterances have no clean reference" in out
    live = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert np.isfinite(live["best_val_loss"]) and live["n_train_utts"] == 8 and live["n_val_utts"] == 2
    assert live["val_without_target"] == 1
    st = live["skipped_train"]
    assert st["n"] == 3 and st["by_reason"] == {"missing": 1, "nonfinite": 1, "unsupported_rate": 1}
    assert any(e.startswith("train-noisy-nan (") and "nan.wav" in e for e in st["examples"])
    assert any(e.startswith("train-noisy-r96 (") and "96000 Hz" in e for e in st["examples"])
    assert live["skipped_val"]["n"] == 1 and live["skipped_val"]["examples"][0].startswith("dev-noisy-nan (")

    ckpt = tmp_path / "models" / "hostile" / "best.ckpt"
    assert eval_main(["--config", str(params), "--ckpt", str(ckpt)]) == 0
    summary = json.loads((tmp_path / "metrics" / "eval.json").read_text())["test"]
    assert summary["n_utts"] == 2 and summary["n_skipped"] == 2
    skipped = sorted(summary["skipped_examples"])
    assert skipped[0].startswith("test-noisy-nan: ") and "NaN" in skipped[0]
    assert skipped[1].startswith("test-noisy-r96: enhancement failed") and "96000 Hz" in skipped[1]
    per_utt = pd.read_parquet(tmp_path / "data" / "eval" / "hostile" / "per_utt.parquet")
    assert sorted(per_utt["utt_id"]) == ["test-noisy-good0", "test-noisy-good1"]
    assert np.isfinite(per_utt["si_sdr"]).all()


FAKE_OFFICIAL_TRAIN = '''
import argparse, pathlib, yaml, soundfile as sf
ap = argparse.ArgumentParser()
ap.add_argument("--config_file")
cfg_path = pathlib.Path(ap.parse_args().config_file)
cfg = yaml.safe_load(cfg_path.read_text())
for key in ("train_set_path", "valid_set_path"):
    lists = pathlib.Path(cfg[key])
    read = lambda n: dict(line.split(" ", 1) for line in (lists / n).read_text().splitlines())
    fs, length = read("utt2fs"), read("speech_length.scp")
    for name in ("wav.scp", "spk1.scp"):
        for uid, path in read(name).items():
            info = sf.info(path)  # every listed file is mono, at its listed rate and length
            assert (info.channels, info.samplerate, info.frames) == (1, int(fs[uid]), int(length[uid])), (uid, path)
out = pathlib.Path("exp") / cfg_path.stem / "ckpts"
out.mkdir(parents=True, exist_ok=True)
(out / "epoch=00-step=000002-val_loss=0.5.ckpt").write_text("official weights")
'''


FAKE_OFFICIAL_INFER = '''
import argparse, pathlib, soundfile as sf
ap = argparse.ArgumentParser()
for flag in ("--input_scp", "--output_dir", "--ckpt_path", "--device"):
    ap.add_argument(flag)
a = ap.parse_args()
wav_dir = pathlib.Path(a.output_dir) / "wav"
wav_dir.mkdir(parents=True, exist_ok=True)
for line in pathlib.Path(a.input_scp).read_text().splitlines():
    uid, path = line.split(" ", 1)
    assert "nan" not in uid, "a file the eval stage skipped reached the official inference"
    if not uid.endswith("good1"):  # the baseline leaves one utterance without an output
        x, sr = sf.read(path)
        sf.write(wav_dir / f"{uid}.wav", 0.5 * x, sr)
'''


def _fake_checkout(root: Path) -> Path:
    (root / "baseline_code").mkdir(parents=True)
    (root / "baseline_code" / "train_se.py").write_text(FAKE_OFFICIAL_TRAIN)
    (root / "baseline_code" / "inference.py").write_text(FAKE_OFFICIAL_INFER)
    (root / "baseline_code" / "config.py").write_text("class Config:\n    pass\n")  # the safe-load launcher imports it
    (root / "conf" / "models").mkdir(parents=True)
    (root / "conf" / "models" / "BSRNN_baseline.yaml").write_text("hidden: 7\n")
    return root


def test_official_backend_lists_decode_as_the_manifest_says_and_refuse_unsafe_ids(
        tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    import sys

    params, _ = _manifest(tmp_path, tree, audio_check="header", rate_policy="resample", channel_policy="first")
    monkeypatch.chdir(tmp_path)
    checkout = _fake_checkout(tmp_path / "checkout")
    official = ["train.backend=official", f"train.official.checkout={checkout}", f"train.official.python={sys.executable}"]
    rows = _rows(tmp_path, "train")
    curated = tmp_path / "curated.csv"
    curated.write_text("utt_id\n" + "".join(f"{u}\n" for u in sorted(rows)))
    assert train_main(["--config", str(params), "--curated_list", str(curated), "--exp.name", "off", *official]) == 0
    err = capsys.readouterr().err
    assert "skip train utterance train-noisy-nan" in err and "skip val utterance dev-noisy-nan" in err
    lists = tmp_path / "models" / "off" / "official" / "train"
    wav = dict(line.split(" ", 1) for line in (lists / "wav.scp").read_text().splitlines())
    fs = dict(line.split(" ", 1) for line in (lists / "utt2fs").read_text().splitlines())
    assert "train-noisy-nan" not in wav and len(wav) == 9
    assert fs["train-noisy-r96"] == "48000" and wav["train-noisy-r96"].endswith("converted/train-noisy-r96.wav")
    assert sf.info(wav["train-noisy-stereo"]).channels == 1

    ckpt = tmp_path / "models" / "off" / "best.ckpt"
    assert eval_main(["--config", str(params), "--ckpt", str(ckpt), *official]) == 0
    summary = json.loads((tmp_path / "metrics" / "eval.json").read_text())["test"]
    assert summary["n_utts"] == 1 and summary["n_skipped"] == 2
    skipped = sorted(summary["skipped_examples"])
    assert skipped[0].startswith("test-noisy-good1: enhancement failed: official inference produced no usable output")
    assert skipped[1].startswith("test-noisy-nan: ") and "NaN" in skipped[1]

    rows["train-noisy-good0"]["utt_id"] = "train noisy good0"  # a manifest made elsewhere, id with a space
    rows = {r["utt_id"]: r for r in rows.values()}
    _write_rows(tmp_path, "train", rows)
    curated.write_text("utt_id\n" + "".join(f"{u}\n" for u in sorted(rows) if u != "train-noisy-nan"))
    assert train_main(["--config", str(params), "--curated_list", str(curated), "--exp.name", "off2", *official]) == 2
    assert "'train noisy good0'" in capsys.readouterr().err
