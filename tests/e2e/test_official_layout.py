"""One official URGENT 2026 training folder through the whole DVC pipeline with the README's command.

A single simulated folder as the official scripts leave it (``wav.scp``, ``spk1.scp``, ``utt2fs``, ``utt2spk``,
``text``, ``utt2lang`` with ISO 639-2 codes, ``speech_length.scp``; here directly in the folder, the log in
``simulation_train/log/meta.tsv``), no validation or test lists: ``dvc exp run -S data.dataset=urgent2026 -S
dataset.urgent2026.root=...`` must hold dev and test out by speaker, normalise the languages and evaluate on the
held-out test split.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml
from test_pipeline import TRACE_DIR, _covered, _stage_of, make_copy, run

from curator.config import TRACE_ENV
from curator.contract.manifest import read_manifest
from curator.datasets.mini.tts import PIPER_SR, Speaker, Synthesizer

pytestmark = pytest.mark.slow

SPEAKERS = 20
PER_SPEAKER = 2
CODES = ("eng", "deu", "spa", "fra", "zho", "cmn")
"""As the official utils/get_utt2lang.py writes them (ISO 639-2), plus ``cmn`` of some Mandarin corpora."""
ISO = {"eng": "en", "deu": "de", "spa": "es", "fra": "fr", "zho": "zh", "cmn": "zh"}
TEXTS = {"en": ("the weather is nice today", "we walked along the river"),
         "de": ("das wetter ist heute schön", "wir gehen am fluss entlang"),
         "es": ("hoy hace buen tiempo", "caminamos junto al río"),
         "fr": ("il fait beau aujourd'hui", "nous marchons le long du fleuve"),
         "zh": ("今天天气很好", "我们沿着河边散步")}


def write_official_folder(root: Path) -> dict[str, str]:
    """``SPEAKERS`` x ``PER_SPEAKER`` utterances of piper speech (the mini dataset's voice, so the references pass
    the quality gate as real ones do) plus one speech-free row; returns utt_id -> utt2lang code."""
    synth = Synthesizer()
    cols = ("id", "noisy_path", "speech_uid", "speech_sid", "clean_path", "noise_uid", "snr_dB", "rir_uid",
            "augmentation", "fs", "length", "text")
    lists: dict[str, list[str]] = {k: [] for k in ("wav.scp", "spk1.scp", "utt2fs", "utt2spk", "text", "utt2lang",
                                                   "speech_length.scp")}
    log, langs = ["\t".join(cols)], {}
    rng = np.random.default_rng(0)
    for i in range(SPEAKERS * PER_SPEAKER + 1):
        uid, k = f"fileid_{i}", i // PER_SPEAKER
        free = i == SPEAKERS * PER_SPEAKER
        spk = "none" if free else f"spk_{k}"
        code = "eng" if free else CODES[k % len(CODES)]
        text = "<not-available>" if free else TEXTS[ISO[code]][i % PER_SPEAKER]
        if free:
            clean = np.zeros(PIPER_SR, np.float32)
        else:
            voice = Speaker(spk, warp=0.9 + 0.25 * (k % 5) / 4, length_scale=0.9 + 0.2 * (k % 3) / 2,
                            tilt=-0.3 + 0.6 * (k % 4) / 3)
            clean = synth.synthesize(text, ISO[code], voice).astype(np.float32)
        noise = rng.standard_normal(len(clean)).astype(np.float32)
        gain = 0.01 if free else np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (5.0 / 10))  # 5 dB SNR
        noisy = clean + gain * noise
        noisy_rel, clean_rel = f"simulation_train/noisy/0/{uid}.flac", f"simulation_train/clean/0/{uid}.flac"
        for rel, x in ((noisy_rel, noisy), (clean_rel, clean)):
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(str(root / rel), 0.9 * x / max(1e-9, float(np.abs(noisy).max())), PIPER_SR, subtype="PCM_16")
        for name, value in (("wav.scp", noisy_rel), ("spk1.scp", clean_rel), ("utt2fs", PIPER_SR), ("utt2spk", spk),
                            ("text", text), ("utt2lang", code), ("speech_length.scp", len(clean))):
            lists[name].append(f"{uid} {value}")
        log.append("\t".join(map(str, (uid, noisy_rel, "none" if free else f"src_{i}", spk, clean_rel,
                                       f"dns5_noise_{i}", 5.0, "none", "none", PIPER_SR, len(clean), text))))
        langs[uid] = code
    for name, lines in lists.items():  # the lists directly in the folder (official: sort -u -k1,1)
        (root / name).write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    (root / "simulation_train/log").mkdir(parents=True, exist_ok=True)
    (root / "simulation_train/log/meta.tsv").write_text("\n".join(log) + "\n", encoding="utf-8")
    return langs


@pytest.fixture(scope="module")
def official_run(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    data = tmp_path_factory.mktemp("urgent2026")
    langs = write_official_folder(data)
    repo = make_copy(tmp_path_factory.mktemp("repo"))
    # the README's command, as written
    run(["dvc", "exp", "run", "-S", "data.dataset=urgent2026", "-S", f"dataset.urgent2026.root={data}"], repo,
        {TRACE_ENV: str(repo / TRACE_DIR)})
    return repo, langs


def test_manifest_holds_out_dev_and_test_by_speaker(official_run):
    repo, langs = official_run
    m = {s: read_manifest(repo / f"data/manifests/urgent2026/{s}.jsonl") for s in ("train", "dev", "test")}
    n = len(langs)
    assert sorted(pd.concat(m.values())["utt_id"]) == sorted(langs)  # every utterance in exactly one split
    assert len(m["dev"]) == 2 and len(m["test"]) == 2 and len(m["train"]) == n - 4  # 5% of 41 -> 2, one speaker each
    speakers = {s: set(df["speaker"].dropna()) for s, df in m.items()}
    assert not speakers["dev"] & speakers["test"] and not (speakers["dev"] | speakers["test"]) & speakers["train"]
    metrics = json.loads((repo / "metrics/manifest.json").read_text())["splits"]
    for split in ("dev", "test"):
        assert metrics[split]["source"] == "holdout" and metrics[split]["utterances"] == 2
        assert metrics[split]["holdout"]["target_utterances"] == 2 and metrics[split]["speakers"] == 1
    assert metrics["train"]["held_out"] == {"dev": 2, "test": 2} and metrics["train"]["utterances"] == n - 4
    assert metrics["train"]["speakers"] == len(speakers["train"]) == SPEAKERS - 2


def test_languages_are_iso639_1_with_the_official_code_kept(official_run):
    repo, langs = official_run
    rows = pd.concat([read_manifest(repo / f"data/manifests/urgent2026/{s}.jsonl") for s in ("train", "dev", "test")])
    for row in rows.itertuples():
        assert row.language == ISO[langs[row.utt_id]] and row.custom == {"language_orig": langs[row.utt_id]}
    train = json.loads((repo / "metrics/manifest.json").read_text())["splits"]["train"]
    assert train["languages_unknown"] == {} and set(train["language"]) <= {"en", "de", "es", "fr", "zh"}


def test_eval_scores_the_held_out_test_split(official_run):
    repo, _ = official_run
    test_ids = set(read_manifest(repo / "data/manifests/urgent2026/test.jsonl")["utt_id"])
    report = json.loads((repo / "metrics/eval.json").read_text())
    assert report["test"]["n_utts"] == len(test_ids) == 2
    pesq = report["test"]["metrics"]["pesq"]
    assert pesq["n"] == 2 and np.isfinite(pesq["enhanced"]) and np.isfinite(pesq["noisy"])
    per_utt = pd.read_parquet(repo / "data/eval/mini_bsrnn/per_utt.parquet")
    assert set(per_utt.loc[per_utt["split"] == "test", "utt_id"]) == test_ids
    assert (repo / "models/mini_bsrnn/best.ckpt").is_file()


OTHER_DATASETS = ("dataset.mini.", "dataset.folder.")
"""Sections of the datasets not run here: parsing validates them (MiniParams.__post_init__ reads its traced
``speakers`` / ``n_rirs`` children, which the trace records), but no code of this run uses them."""


def test_dataset_stages_list_what_they_read(official_run):
    """The urgent2026 code paths of prepare and manifest read only params their dvc.yaml entries list."""
    repo, _ = official_run
    stages = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    problems, seen = [], set()
    for trace_file in sorted((repo / TRACE_DIR).glob("*.json")):
        trace = json.loads(trace_file.read_text())
        stage = _stage_of(trace["argv"], stages)
        if stage not in ("prepare", "manifest"):
            continue
        seen.add(stage)
        listed = list(stages[stage].get("params", {}).get("params.yaml", {}))
        problems += [f"{stage} reads {k}" for k in trace["keys"]
                     if not _covered(k, listed) and not k.startswith(OTHER_DATASETS)]
        assert any(k.startswith("dataset.urgent2026.holdout.") for k in trace["keys"]), trace["keys"]
    assert seen == {"prepare", "manifest"} and not problems, problems
