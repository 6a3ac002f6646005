"""``curator enhance``: the official inference layout, each file at its own rate, hostile inputs skipped and named,
eval's own signals for a manifest, a resume after a real kill, and outputs of other settings refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from curator.audio import resample
from curator.contract.manifest import write_manifest
from curator.evaluation.enhance import ModelEnhancer, peak_normalize
from curator.evaluation.evaluate import _load_pair
from curator.evaluation.inference import INPUTS, main, read_input_log
from curator.training.checkpoint import save_checkpoint
from curator.training.models import build_model, model_options, options_dict

REPO = Path(__file__).resolve().parents[2]
PARAMS = str(REPO / "tests" / "params.yaml")
# a 24 kHz model: a 48 kHz file is one it cannot run on
SMALL = {"num_channels": 8, "num_layers": 1, "max_sr": 24000, "band_layout": [[4000, 500], [12000, 2000]]}


def _checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    options = options_dict(model_options("bsrnn", SMALL))
    save_checkpoint(path, build_model("bsrnn", options), "bsrnn", options)
    return path


def _speech(rng: np.random.Generator, n: int, channels: int = 1) -> np.ndarray:
    x = rng.normal(0, 0.1, (n, channels)).astype(np.float32) * np.hanning(n)[:, None].astype(np.float32)
    return x[:, 0] if channels == 1 else x


def _model_output(ckpt: Path, x: np.ndarray, sr: int) -> np.ndarray:
    torch.set_num_threads(2)
    return ModelEnhancer(ckpt, "cpu")("u", x, sr)


def _run(args: list[str], out: Path, *overrides: str) -> int:
    return main(["--config", PARAMS, *args, "--output_dir", str(out), *overrides])


def test_a_wav_scp_gives_the_official_layout_at_each_files_rate(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    audio = {"a8": (_speech(rng, 8000), 8000), "b16": (_speech(rng, 12000), 16000),
             "c11": (_speech(rng, 9000), 11025), "d24stereo": (_speech(rng, 24000, 2), 24000),
             "e48": (_speech(rng, 48000), 48000)}
    Path("in").mkdir()
    for uid, (x, sr) in audio.items():
        sf.write(f"in/{uid}.flac" if uid == "b16" else f"in/{uid}.wav", x, sr)
    Path("in/broken.wav").write_bytes(b"RIFF not audio")
    sf.write("in/nan.wav", np.array([0.1, np.nan, 0.2] * 100, np.float32), 16000, subtype="FLOAT")
    sf.write("in/empty.wav", np.zeros(0, np.float32), 16000)  # a header and no samples (torch's STFT raised)
    scp = {uid: f"in/{uid}.flac" if uid == "b16" else f"in/{uid}.wav" for uid in audio}
    scp |= {"broken": "in/broken.wav", "nan": "in/nan.wav", "missing": "in/missing.wav", "empty": "in/empty.wav",
            "piped": "sox in/a8.wav -t wav - |"}
    Path("wav.scp").write_text("".join(f"{u} {p}\n" for u, p in sorted(scp.items())))

    assert _run(["--ckpt", str(ckpt), "--input_scp", "wav.scp"], Path("out"), "enhance.subtype=FLOAT") == 0
    printed = capsys.readouterr().out
    assert "4 written, 0 kept from an earlier run, 6 skipped (2 enhancement_failed, 4 undecodable)" in printed

    lines = Path("out/inf.scp").read_text().splitlines()
    assert lines == [f"{u} out/wav/{u}.wav" for u in ("a8", "b16", "c11", "d24stereo")]
    for uid in ("a8", "b16", "d24stereo"):
        x, sr = sf.read(scp[uid], dtype="float32", always_2d=True)  # 16-bit files: the samples as stored
        mono = x[:, 0]  # dataset.channel_policy: first
        y, out_sr = sf.read(f"out/wav/{uid}.wav", dtype="float32")
        assert out_sr == sr and len(y) == len(mono)
        np.testing.assert_array_equal(y, peak_normalize(_model_output(ckpt, mono, sr), 0.9))
    # 11025 Hz is not a rate of dataset.sample_rates: enhanced at 16 kHz, written back at 11025 Hz, same length
    x, sr = sf.read(scp["c11"], dtype="float32")
    y, out_sr = sf.read("out/wav/c11.wav", dtype="float32")
    at16 = _model_output(ckpt, resample(x, sr, 16000), 16000)
    assert out_sr == 11025 and len(y) == len(x)
    np.testing.assert_allclose(y, peak_normalize(resample(at16, 16000, sr)[:len(x)], 0.9), atol=1e-6)
    assert np.abs(y).max() == pytest.approx(0.9)

    report = json.loads(Path("out/enhance.json").read_text())
    assert report["status"] == "done" and report["n_inputs"] == 10 and report["n_outputs"] == 4
    assert report["skipped_by_reason"] == {"enhancement_failed": 2, "undecodable": 4}
    why = {s["utt_id"]: s for s in report["skipped"]}
    assert "48000 Hz" in why["e48"]["detail"] and "in/broken.wav" in why["broken"]["detail"]
    assert "NaN" in why["nan"]["detail"] and "in/missing.wav" in why["missing"]["detail"]
    assert "piped command" in why["piped"]["detail"] and why["empty"]["detail"] == "the input holds no samples"
    assert report["policies"]["resampled_by_rate"] == {"11025->16000": 1}
    assert report["fingerprint"]["subtype"] == "FLOAT" and len(report["fingerprint"]["checkpoint_sha256"]) == 64

    # a list whose paths are relative to another folder (official lists: where the simulation ran): --root
    monkeypatch.chdir(tmp_path.parent)
    assert _run(["--ckpt", str(ckpt), "--input", str(tmp_path / "wav.scp"), "--root", str(tmp_path)],
                tmp_path / "rooted", "enhance.subtype=FLOAT") == 0
    assert _files(tmp_path / "rooted" / "wav") == _files(tmp_path / "out" / "wav")
    monkeypatch.chdir(tmp_path)
    # the official inference's own format: 16-bit wav; with dataset.rate_policy reject, 11025 Hz is skipped
    assert _run(["--ckpt", str(ckpt), "--input", "wav.scp"], Path("out16"), "dataset.rate_policy=reject") == 0
    assert sf.info("out16/wav/a8.wav").subtype == "PCM_16"
    assert json.loads(Path("out16/enhance.json").read_text())["skipped_by_reason"]["unsupported_rate"] == 1


def test_a_manifest_gives_the_signals_eval_scores(tmp_path):
    rng = np.random.default_rng(1)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    rows = []
    for i, (sr, file_sr) in enumerate([(16000, 16000), (16000, 11025)]):
        clean = _speech(rng, file_sr)
        noisy = clean + rng.normal(0, 0.02, file_sr).astype(np.float32)
        sf.write(tmp_path / f"n{i}.wav", noisy, file_sr)
        sf.write(tmp_path / f"c{i}.wav", clean, file_sr)
        rows.append({"utt_id": f"u{i}", "path": str(tmp_path / f"n{i}.wav"), "clean_path": str(tmp_path / f"c{i}.wav"),
                     "duration_sec": 1.0, "sr": sr, "language": "eng", "distortion": "noise", "split": "test",
                     "custom": {"source_sr": file_sr} if file_sr != sr else {}})
    write_manifest(tmp_path / "test.jsonl", rows)
    out = tmp_path / "out"
    assert _run(["--ckpt", str(ckpt), "--input", str(tmp_path / "test.jsonl")], out, "enhance.subtype=FLOAT") == 0
    for row in rows:
        noisy, _ = _load_pair(pd.Series(row), 1e-4)  # what eval decodes and enhances
        scored = peak_normalize(_model_output(ckpt, noisy, row["sr"]), 0.9)
        y, sr = sf.read(out / "wav" / f"{row['utt_id']}.wav", dtype="float32")
        if row["custom"]:  # decoded at the row's rate from 11025 Hz: written back at the file's own rate
            assert sr == 11025 and len(y) == 11025
        else:
            assert sr == 16000
            np.testing.assert_array_equal(y, scored)

    before = _files(out / "wav")  # the row's rate changes, its file does not: enhanced again at the new rate
    rows[1] = {**rows[1], "sr": 22050}
    write_manifest(tmp_path / "test.jsonl", rows)
    assert _run(["--ckpt", str(ckpt), "--input", str(tmp_path / "test.jsonl")], out, "enhance.subtype=FLOAT") == 0
    after = _files(out / "wav")
    assert after["u0.wav"] == before["u0.wav"] and after["u1.wav"] != before["u1.wav"]
    fresh = tmp_path / "fresh"
    assert _run(["--ckpt", str(ckpt), "--input", str(tmp_path / "test.jsonl")], fresh, "enhance.subtype=FLOAT") == 0
    assert _files(fresh / "wav") == after


def test_a_folder_gives_the_folder_datasets_ids(tmp_path, capsys):
    rng = np.random.default_rng(2)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    root = tmp_path / "noisy"
    for rel in ("a b/c.wav", "d.flac", ".hidden/e.wav", "f.WAV"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / rel, _speech(rng, 4000), 16000)
    (root / "notes.txt").write_text("not audio")
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], tmp_path / "out") == 0
    ids = [line.split()[0] for line in (tmp_path / "out" / "inf.scp").read_text().splitlines()]
    assert ids == ["a_b-c", "d", "f"]
    # an output folder inside the input folder: its files are no inputs, so a rerun keeps the same list
    for _ in range(2):
        assert _run(["--ckpt", str(ckpt), "--input", str(root)], root / "enhanced") == 0
        assert (root / "enhanced" / "inf.scp").read_text().split()[::2] == ids
    sf.write(root / "d.wav", _speech(rng, 4000), 16000)  # d.wav and d.flac: one id, two files
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], tmp_path / "out2") == 2
    assert "map to the same id 'd'" in capsys.readouterr().err
    (tmp_path / "bad.scp").write_text(f"x/y {root / 'd.wav'}\n")
    assert _run(["--ckpt", str(ckpt), "--input", str(tmp_path / "bad.scp")], tmp_path / "out3") == 2
    assert "'x/y'" in capsys.readouterr().err


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_killed_run_resumes_to_the_same_files_and_other_settings_are_refused(tmp_path, capsys):
    rng = np.random.default_rng(3)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    root = tmp_path / "noisy"
    root.mkdir()
    for i in range(40):
        sf.write(root / f"u{i:02d}.wav", _speech(rng, 48000), 24000)
    def cli(out: Path) -> subprocess.Popen:  # `curator enhance` as a user runs it: a process pinned as eval is
        return subprocess.Popen([sys.executable, "-m", "curator.cli", "enhance", "--config", PARAMS, "--ckpt", str(ckpt),
                                 "--input", str(root), "--output_dir", str(out)], env={**os.environ, "PYTHONHASHSEED": "0"},
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    whole = tmp_path / "whole"
    assert cli(whole).wait() == 0
    expected = _files(whole / "wav")

    out = tmp_path / "killed"
    proc = cli(out)
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline:
        if (out / "wav").is_dir() and any(p.suffix == ".wav" for p in (out / "wav").iterdir()):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed half-way"
    done = [p for p in (out / "wav").iterdir() if p.suffix == ".wav"]
    assert 0 < len(done) < 40 and not (out / "inf.scp").exists()
    assert json.loads((out / "enhance.json").read_text())["status"] == "running"
    (out / "wav" / ".u39.wav.abc123.tmp").write_bytes(b"half a file")  # as atomic_path leaves one when killed

    recorded = len(read_input_log(out / INPUTS))  # a kill between a file and its record: that file is redone
    assert len(done) - 1 <= recorded <= len(done)

    resumed = cli(out)
    printed, _ = resumed.communicate()
    assert resumed.returncode == 0
    again = f" ({len(done) - recorded} of them again: input changed or unrecorded)" if recorded < len(done) else ""
    assert f"{40 - recorded} written{again}, {recorded} kept from an earlier run" in printed
    assert _files(out / "wav") == expected
    assert (out / "inf.scp").read_text() == (whole / "inf.scp").read_text().replace(str(whole), str(out))

    other = _checkpoint(tmp_path / "other.ckpt", seed=1)
    assert _run(["--ckpt", str(other), "--input", str(root)], out) == 2
    assert "other settings (checkpoint_sha256 differ)" in capsys.readouterr().err
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], out, "enhance.subtype=PCM_24") == 2
    assert "subtype differ" in capsys.readouterr().err
    assert _files(out / "wav") == expected  # refused: nothing touched
    assert _run(["--ckpt", str(other), "--input", str(root), "--overwrite"], out) == 0
    assert _files(out / "wav").keys() == expected.keys() and _files(out / "wav") != expected

    foreign = tmp_path / "foreign"
    (foreign / "wav").mkdir(parents=True)
    (foreign / "wav" / "mine.wav").write_bytes(b"a user's file")
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], foreign) == 2
    assert "no enhance run recorded" in capsys.readouterr().err


def test_an_input_replaced_under_its_name_is_enhanced_again(tmp_path, capsys):
    rng = np.random.default_rng(4)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    root, out = tmp_path / "noisy", tmp_path / "out"
    root.mkdir()
    for name in ("a", "b", "c"):
        sf.write(root / f"{name}.wav", _speech(rng, 4000), 16000)
    def run(where: Path = out) -> str:
        assert _run(["--ckpt", str(ckpt), "--input", str(root)], where) == 0
        return capsys.readouterr().out

    run()
    before = _files(out / "wav")
    assert "0 written, 3 kept from an earlier run" in run()
    sf.write(root / "b.wav", _speech(rng, 4000), 16000)  # new samples under the same name (and the same size)
    assert "1 written (1 of them again: input changed or unrecorded), 2 kept from an earlier run" in run()
    after = _files(out / "wav")
    assert after.keys() == before.keys() and after["b.wav"] != before["b.wav"]
    assert {k: after[k] for k in ("a.wav", "c.wav")} == {k: before[k] for k in ("a.wav", "c.wav")}
    run(tmp_path / "fresh")
    assert _files(tmp_path / "fresh" / "wav") == after  # as a run that never saw the old b.wav

    log = out / INPUTS  # a record a killed writer left half-written: its file is written again, the rest kept
    log.write_text(log.read_text()[:-20])
    assert "1 written (1 of them again: input changed or unrecorded), 2 kept from an earlier run" in run()
    assert _files(out / "wav") == after and set(read_input_log(log)) == {"a", "b", "c"}
    log.write_bytes(log.read_bytes() + b"\xff\xfe damage\n")  # bytes that are no UTF-8: that line is ignored
    assert "0 written, 3 kept from an earlier run" in run()

    (root / "c.wav").write_bytes(b"RIFF no longer audio")  # its old output must not outlive it
    assert "0 written, 2 kept from an earlier run, 1 skipped (1 undecodable)" in run()
    assert not (out / "wav" / "c.wav").exists() and (out / "inf.scp").read_text().split()[::2] == ["a", "b"]
    report = json.loads((out / "enhance.json").read_text())
    assert [s["utt_id"] for s in report["skipped"]] == ["c"] and report["n_reused"] == 2

    (root / "a.wav").unlink()  # no longer listed: its output goes, and the record names the folder's outputs only
    assert "0 written, 1 kept from an earlier run, 1 skipped (1 undecodable), 1 removed (input no longer listed)" \
        in run()
    assert _files(out / "wav").keys() == {"b.wav"} and set(read_input_log(log)) == {"b"}
    report = json.loads((out / "enhance.json").read_text())
    assert report["removed"] == ["a"] and report["n_removed"] == 1
    (out / "wav" / "old.wav").write_bytes(b"written before records")  # no record: not removed
    assert "0 written, 1 kept from an earlier run" in run() and (out / "wav" / "old.wav").is_file()


def test_inputs_moved_or_touched_are_kept_by_their_content(tmp_path, capsys):
    import shutil

    rng = np.random.default_rng(5)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    root, out = tmp_path / "noisy", tmp_path / "out"
    root.mkdir()
    for name in ("a", "b", "c"):
        sf.write(root / f"{name}.wav", _speech(rng, 4000), 16000)

    def run(where: Path) -> str:
        assert _run(["--ckpt", str(ckpt), "--input", str(where)], out) == 0
        return capsys.readouterr().out

    run(root)
    before = _files(out / "wav")
    assert all(len(r["sha256"]) == 64 for r in read_input_log(out / INPUTS).values())
    moved = tmp_path / "copy"  # a copy without cp -p: new paths, new modification times, the same bytes
    shutil.copytree(root, moved, copy_function=shutil.copyfile)
    os.utime(moved / "a.wav", ns=(1, 1))
    sf.write(moved / "c.wav", _speech(rng, 4000), 16000)  # other samples, the same size: enhanced again
    printed = run(moved)
    assert "1 written (1 of them again: input changed or unrecorded), 2 kept from an earlier run (2 of them by " \
        "content: input moved or touched)" in printed
    after = _files(out / "wav")
    assert {k: after[k] for k in ("a.wav", "b.wav")} == {k: before[k] for k in ("a.wav", "b.wav")}
    assert after["c.wav"] != before["c.wav"]
    report = json.loads((out / "enhance.json").read_text())
    assert (report["n_reused"], report["n_reused_by_content"], report["n_redone"]) == (2, 2, 1)
    records = read_input_log(out / INPUTS)  # the record now names the copies: the next run reads nothing
    assert {r["path"] for r in records.values()} == {str((moved / f"{n}.wav").resolve()) for n in "abc"}
    assert "0 written, 3 kept from an earlier run, 0 skipped" in run(moved)


def test_bad_settings_and_foreign_checkpoints_are_named(tmp_path, capsys):
    root = tmp_path / "noisy"
    root.mkdir()
    sf.write(root / "a.wav", np.zeros(1600, np.float32), 16000)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], tmp_path / "o", "enhance.format=flac",
                "enhance.subtype=FLOAT") == 2
    assert "enhance.subtype (with enhance.format: flac)" in capsys.readouterr().err
    assert _run(["--ckpt", str(tmp_path / "nope.ckpt"), "--input", str(root)], tmp_path / "o") == 2
    assert "nope.ckpt' does not exist" in capsys.readouterr().err
    (tmp_path / "official.ckpt").write_bytes(b"a Lightning checkpoint of the official baseline")
    assert _run(["--ckpt", str(tmp_path / "official.ckpt"), "--input", str(root)], tmp_path / "o",
                "train.official.checkout=" + str(tmp_path / "no_checkout")) == 2
    assert "no_checkout" in capsys.readouterr().err
    assert _run(["--ckpt", str(ckpt), "--input", str(root)], tmp_path / "s") == 0  # a silent input is enhanced too
    assert sf.info(tmp_path / "s" / "wav" / "a.wav").frames == 1600


FAKE_INFERENCE = '''\
import argparse, os
import soundfile as sf
ap = argparse.ArgumentParser()
for flag in ("--input_scp", "--output_dir", "--ckpt_path", "--device"):
    ap.add_argument(flag)
args = ap.parse_args()
os.makedirs(os.path.join(args.output_dir, "wav"))
for line in open(args.input_scp):
    uid, path = line.split()
    x, sr = sf.read(path, dtype="float32")
    sf.write(os.path.join(args.output_dir, "wav", uid + ".wav"), 0.5 * x, sr)
'''


def test_an_official_checkpoint_runs_through_the_checkout_with_a_relative_interpreter(tmp_path, monkeypatch, capsys):
    """The official path (a checkpoint in another format -> the checkout's inference.py, run in a folder of its own)
    with a stand-in checkout whose inference halves its input, and an interpreter named relative to the working
    directory, as third_party/README.md names it: it used to be looked up from the inference's folder."""
    monkeypatch.chdir(tmp_path)
    checkout = Path("checkout")
    (checkout / "baseline_code").mkdir(parents=True)
    (checkout / "baseline_code" / "__init__.py").write_text("")
    (checkout / "baseline_code" / "config.py").write_text("class Config:\n    pass\n")
    (checkout / "baseline_code" / "train_se.py").write_text("")
    (checkout / "baseline_code" / "inference.py").write_text(FAKE_INFERENCE)
    Path("venv/bin").mkdir(parents=True)
    Path("venv/bin/python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    Path("venv/bin/python").chmod(0o755)
    Path("official.ckpt").write_bytes(b"a Lightning checkpoint")
    rng = np.random.default_rng(4)
    Path("noisy").mkdir()
    for name, sr in (("a", 16000), ("b", 11025)):
        sf.write(f"noisy/{name}.wav", _speech(rng, sr // 2), sr)
    official = ["train.official.checkout=checkout", "train.official.device=cpu"]
    args = ["--ckpt", "official.ckpt", "--input", "noisy"]
    assert _run(args, Path("out"), *official, "train.official.python=venv/bin/python") == 0
    assert "2 written" in capsys.readouterr().out
    for name, sr in (("a", 16000), ("b", 11025)):
        x, _ = sf.read(f"noisy/{name}.wav", dtype="float32")
        y, out_sr = sf.read(f"out/wav/{name}.wav", dtype="float32")
        assert out_sr == sr and len(y) == len(x)
        if sr == 16000:  # halved by the stand-in, peak-normalised here: the input at peak 0.9, up to the 16-bit
            gain = 0.9 / np.abs(x).max()  # step of the stand-in's file, scaled by the normalisation, and our own step
            np.testing.assert_allclose(y, peak_normalize(x, 0.9), atol=2 * (gain + 1) * 2.0 ** -15)
    assert _run(args, Path("out2"), *official, "train.official.python=venv/bin/nope") == 2
    err = capsys.readouterr().err
    assert "train.official.python = 'venv/bin/nope' is not an executable program" in err
    assert not Path("out2").exists()  # refused before anything was written


def test_eval_scores_written_outputs_as_it_scores_the_model(tmp_path):
    """`curator enhance` on a split, then `curator eval --enhanced` on its inf.scp: the per-utterance figures of
    `curator eval --ckpt` on the same split, so any system's outputs can be compared with this project's."""
    from curator.evaluation.cli import main as eval_main

    rng = np.random.default_rng(5)
    ckpt = _checkpoint(tmp_path / "best.ckpt")
    manifest = tmp_path / "data" / "manifests" / "mini" / "test.jsonl"
    manifest.parent.mkdir(parents=True)
    rows = []
    for i in range(4):
        clean = _speech(rng, 16000)
        noisy = clean + rng.normal(0, 0.03, 16000).astype(np.float32)
        sf.write(tmp_path / f"n{i}.wav", noisy, 16000, subtype="FLOAT")
        sf.write(tmp_path / f"c{i}.wav", clean, 16000, subtype="FLOAT")
        rows.append({"utt_id": f"u{i}", "path": str(tmp_path / f"n{i}.wav"), "clean_path": str(tmp_path / f"c{i}.wav"),
                     "duration_sec": 1.0, "sr": 16000, "language": "eng", "distortion": "noise", "split": "test"})
    write_manifest(manifest, rows)
    data = [f"data.root={tmp_path / 'data'}", "data.dataset=mini", "eval.metrics=[si_sdr,pesq,estoi]",
            "eval.num_workers=0", "eval.bootstrap.n_boot=200"]
    assert _run(["--ckpt", str(ckpt), "--input", str(manifest)], tmp_path / "enh", "enhance.subtype=FLOAT") == 0
    scp = tmp_path / "enh" / "inf.scp"  # a system that left one output out: skipped and named
    scp.write_text("".join(line for line in scp.read_text().splitlines(keepends=True) if not line.startswith("u3 ")))
    tables = {}
    for name, source in (("model", ["--ckpt", str(ckpt)]), ("files", ["--enhanced", str(tmp_path / "enh")])):
        out = tmp_path / name
        assert eval_main(["--config", PARAMS, *source, "--out", str(out / "eval.json"), "--per_utt",
                          str(out / "per_utt.parquet"), "--slices_out", str(out / "slices.json"), "--plots",
                          str(out / "plots"), *data]) == 0
        tables[name] = pd.read_parquet(out / "per_utt.parquet").set_index("utt_id")
    files, model = tables["files"], tables["model"].loc[tables["files"].index]
    assert list(files.index) == ["u0", "u1", "u2"]
    report = json.loads((tmp_path / "files" / "eval.json").read_text())["test"]
    assert report["n_skipped"] == 1 and "no enhanced output for 'u3'" in report["skipped_examples"][0]
    for metric in ("si_sdr", "pesq", "estoi", "noisy_pesq"):
        np.testing.assert_array_equal(files[metric].to_numpy(), model[metric].to_numpy())
