"""The official-baseline backend against a fake checkout that the test writes (same entry points and files)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from curator.evaluation.cli import main as eval_main
from curator.training.cli import main as train_main

FAKE_TRAIN = '''
import argparse, pathlib, yaml
ap = argparse.ArgumentParser()
ap.add_argument("--config_file")
cfg_path = pathlib.Path(ap.parse_args().config_file)
cfg = yaml.safe_load(cfg_path.read_text())
assert cfg["train_set_dynamic_mixing"] is False and cfg["hidden"] == 7
train = pathlib.Path(cfg["train_set_path"])
lines = {n: (train / n).read_text().splitlines() for n in ("wav.scp", "spk1.scp", "utt2fs", "speech_length.scp")}
assert len({len(v) for v in lines.values()}) == 1
for line in lines["spk1.scp"]:
    assert pathlib.Path(line.split()[1]).is_file()
out = pathlib.Path("exp") / cfg_path.stem / "baseline" / "version_0" / "checkpoints"
out.mkdir(parents=True, exist_ok=True)
for loss in ("0.700", "0.500", "0.900"):
    (out / f"best_epoch=00-step=000001-val_loss={loss}.ckpt").write_text("official weights " + loss)
'''

FAKE_INFER = '''
import argparse, pathlib, soundfile as sf
ap = argparse.ArgumentParser()
for flag in ("--input_scp", "--output_dir", "--ckpt_path", "--device"):
    ap.add_argument(flag)
a = ap.parse_args()
assert pathlib.Path(a.ckpt_path).read_text().startswith("official weights")
wav_dir = pathlib.Path(a.output_dir) / "wav"
wav_dir.mkdir(parents=True, exist_ok=True)
for line in pathlib.Path(a.input_scp).read_text().splitlines():
    uid, path = line.split()
    x, sr = sf.read(path)
    sf.write(wav_dir / f"{uid}.wav", 0.5 * x, sr)
'''


def fake_checkout(root: Path) -> Path:
    (root / "baseline_code").mkdir(parents=True)
    (root / "baseline_code" / "train_se.py").write_text(FAKE_TRAIN)
    (root / "baseline_code" / "inference.py").write_text(FAKE_INFER)
    # what inference allows for weights-only checkpoint loading (SAFE_GLOBALS) is imported from the checkout
    (root / "baseline_code" / "config.py").write_text("class Config:\n    pass\n")
    (root / "conf" / "models").mkdir(parents=True)
    (root / "conf" / "models" / "BSRNN_baseline.yaml").write_text("hidden: 7\ntrain_set_dynamic_mixing: true\n")
    return root


def test_official_train_and_eval(corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    checkout = fake_checkout(tmp_path / "third_party" / "urgent2026_challenge_track1")
    overrides = ["train.backend=official", f"train.official.checkout={checkout}",
                 f"train.official.python={sys.executable}"]
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "off", *overrides]) == 0
    best = tmp_path / "models" / "off" / "best.ckpt"
    assert best.read_text() == "official weights 0.500"  # the lowest val_loss
    # the speech-free row is dropped for this backend (its loss divides by the reference's variance) and counted
    wav_scp = (tmp_path / "models" / "off" / "official" / "train" / "wav.scp").read_text()
    assert len(wav_scp.splitlines()) == 7 and "train_07 " not in wav_scp
    metrics = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert metrics["speech_free_train"]["n"] == 1 and metrics["best_val_loss"] == 0.5
    # the fake trainer ran in the run's own folder: its exp/ is there, never in the checkout
    assert (tmp_path / "models" / "off" / "official" / "exp" / "off").is_dir() and not (checkout / "exp").exists()
    assert eval_main(["--config", str(corpus["params"]), "--ckpt", str(best), "eval.num_workers=0",
                      "eval.metrics=[si_sdr]", *overrides]) == 0
    test = json.loads((tmp_path / "metrics" / "eval.json").read_text())["test"]
    # the fake "enhancer" only rescales, and SI-SDR is scale-invariant
    assert test["metrics"]["si_sdr"]["enhanced"] == pytest.approx(test["metrics"]["si_sdr"]["noisy"], abs=1e-3)


def test_missing_checkout_says_where_to_put_it(corpus: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "train.backend=official", "train.official.checkout=third_party/nowhere"]) == 2
    err = capsys.readouterr().err
    assert "third_party/nowhere/baseline_code/train_se.py" in err
    assert "urgent2026_challenge_track1" in err and "third_party/README.md" in err
