"""Import a simulated set in the official URGENT list layout into manifest rows.

Inputs (one folder per split): ``wav.scp`` (required) and, when present, ``spk1.scp``, ``utt2fs``,
``utt2spk``, ``text``, ``utt2lang``, ``speech_length.scp``, plus the simulation log ``meta.tsv``, which
gives the distortion labels (see :mod:`curator.datasets.labels`). Relative paths resolve against ``root``:
the folder the simulation ran in, not the folder of the list. Files that fail their checks are returned
as counted rejections with a reason.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from curator.contract.manifest import Utterance
from curator.datasets.checks import CheckRequest, check_many
from curator.datasets.kaldi import NONE, NOT_AVAILABLE, ListError, read_kv, read_meta_tsv
from curator.datasets.labels import (
    UNKNOWN_LANGUAGE,
    normalize_language,
    primary_distortion,
    split_augmentations,
)
from curator.datasets.paths import resolve_many

OPTIONAL_LISTS = ("spk1.scp", "utt2fs", "utt2spk", "text", "utt2lang", "speech_length.scp")
BLOCK = 50_000
"""Utterances checked and converted per block (bounds memory on million-file splits)."""


@dataclass(frozen=True)
class CheckConfig:
    """How audio is checked while importing (``dataset.audio_check``, ``silence_peak``, ``num_workers``)."""

    mode: str
    silence_peak: float
    workers: int


@dataclass
class Rejection:
    """A file left out of the manifest, and why."""

    utt_id: str
    path: str
    reason: str


@dataclass
class ImportResult:
    """Manifest rows of one split (a list, or a lazy iterator that fills ``rejected`` as it runs)."""

    rows: Iterable[Utterance] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


def _resolve(uids: list[str], table: dict[str, str], root: Path) -> dict[str, tuple[str, str]]:
    """uid -> (absolute path, manifest path) of the listed files."""
    absolute, rel = resolve_many([table[u] for u in uids], root)
    return dict(zip(uids, zip(absolute, rel, strict=True), strict=True))


def read_layout(list_dir: Path) -> dict[str, dict[str, str]]:
    """All lists of one split folder by name (``wav.scp`` required, the others when present)."""
    if not (list_dir / "wav.scp").is_file():
        raise ListError(f"'{list_dir}/wav.scp' does not exist: point dataset.*.lists at the folder holding the "
                        f"official lists (wav.scp, spk1.scp, utt2fs, ...)")
    out = {"wav.scp": read_kv(list_dir / "wav.scp")}
    for name in OPTIONAL_LISTS:
        if (list_dir / name).is_file():
            out[name] = read_kv(list_dir / name)
    return out


def _int_field(lists: dict[str, dict[str, str]], name: str, uid: str, list_dir: Path) -> int | None:
    value = lists.get(name, {}).get(uid)
    if value is None:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ListError(f"{list_dir / name}: entry '{uid}' has {value!r}, expected a positive integer")
    return int(value)


def iter_split(split: str, list_dir: Path, meta_tsv: Path | None, root: Path, source: str, checks: CheckConfig,
               rejected: list[Rejection]) -> Iterator[Utterance]:
    """Manifest rows of one split, sorted by utt_id, produced ``BLOCK`` utterances at a time.

    Rejected files are appended to ``rejected`` as the iteration reaches them, so a split of millions of
    files is checked and written without holding all its rows in memory.
    """
    lists = read_layout(list_dir)
    meta = read_meta_tsv(meta_tsv) if meta_tsv is not None else None
    uids = sorted(lists["wav.scp"])
    for start in range(0, len(uids), BLOCK):
        block = uids[start : start + BLOCK]
        noisy = _resolve(block, lists["wav.scp"], root)
        clean = _resolve([u for u in block if u in lists.get("spk1.scp", {})], lists.get("spk1.scp", {}), root)
        speech_free = {u for u in block if meta is not None and u in meta and meta[u]["speech_uid"] == NONE}
        checked = _check_files(block, noisy, clean, speech_free, lists, checks)
        for uid in block:
            reason, sr, frames = _consistency(uid, checked, lists, list_dir, meta, clean)
            if reason is not None:
                bad = clean[uid] if reason.startswith("clean_") else noisy[uid]
                rejected.append(Rejection(uid, bad[1], reason))
                continue
            yield _row(uid, split, sr, frames, lists, meta, noisy, clean, source)


def import_split(split: str, list_dir: Path, meta_tsv: Path | None, root: Path, source: str,
                 checks: CheckConfig) -> ImportResult:
    """:func:`iter_split` collected into a list (for verification and tests)."""
    rejected: list[Rejection] = []
    rows = list(iter_split(split, list_dir, meta_tsv, root, source, checks, rejected))
    return ImportResult(rows, rejected)


def _check_files(uids: list[str], noisy: dict[str, tuple[str, str]], clean: dict[str, tuple[str, str]],
                 speech_free: set[str],
                 lists: dict[str, dict[str, str]], checks: CheckConfig) -> dict[tuple[str, str], tuple]:
    """(uid, 'noisy'|'clean') -> (reason, sr, frames); in ``lists`` mode only files the lists cannot
    describe (no utt2fs / speech_length entry) are read, from their header."""
    reqs: list[CheckRequest] = []
    keys: list[tuple[str, str]] = []
    for uid in uids:
        described = uid in lists.get("utt2fs", {}) and uid in lists.get("speech_length.scp", {})
        mode = "header" if checks.mode == "lists" and not described else checks.mode
        if mode == "lists":
            continue
        reqs.append(CheckRequest(noisy[uid][0], mode, checks.silence_peak))
        keys.append((uid, "noisy"))
        if uid in clean and checks.mode != "lists":
            reqs.append(CheckRequest(clean[uid][0], mode, checks.silence_peak, allow_silent=uid in speech_free))
            keys.append((uid, "clean"))
    results = check_many(reqs, checks.workers)
    return {k: (r.reason, r.sr, r.frames) for k, r in zip(keys, results, strict=True)}


def _consistency(uid: str, checked: dict, lists: dict[str, dict[str, str]], list_dir: Path,
                 meta: dict[str, dict[str, str]] | None, clean: dict[str, tuple[str, str]]
                 ) -> tuple[str | None, int, int]:
    """First problem of one utterance (or None) and its (sr, frames) as the lists and the audio agree."""
    list_sr = _int_field(lists, "utt2fs", uid, list_dir)
    list_len = _int_field(lists, "speech_length.scp", uid, list_dir)
    reason, sr, frames = checked.get((uid, "noisy"), (None, list_sr, list_len))
    if reason is not None:
        return reason, 0, 0
    if list_sr is not None and sr != list_sr:
        return "sr_mismatch", 0, 0
    if list_len is not None and frames != list_len:
        return "length_mismatch", 0, 0
    if (uid, "clean") in checked:
        c_reason, c_sr, c_frames = checked[(uid, "clean")]
        if c_reason is not None:
            return f"clean_{c_reason}", 0, 0
        if c_sr != sr:
            return "clean_sr_mismatch", 0, 0
        if c_frames != frames:
            return "clean_length_mismatch", 0, 0
    if meta is not None and uid not in meta:
        return "missing_from_meta_tsv", 0, 0
    return None, int(sr), int(frames)


def _snr(value: str, uid: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ListError(f"meta.tsv row '{uid}': snr_dB {value!r} is not a number") from None


def _row(uid: str, split: str, sr: int, frames: int, lists: dict[str, dict[str, str]],
         meta: dict[str, dict[str, str]] | None, noisy: dict[str, tuple[str, str]],
         clean: dict[str, tuple[str, str]], source: str) -> Utterance:
    m = meta.get(uid) if meta is not None else None
    augs = split_augmentations(m["augmentation"]) if m else []
    rir = m["rir_uid"] if m and m["rir_uid"] != NONE else None
    free = bool(m) and m["speech_uid"] == NONE
    snr = _snr(m["snr_dB"], uid) if m else math.nan
    text = lists.get("text", {}).get(uid) or (m["text"] if m else None)
    lang = lists.get("utt2lang", {}).get(uid)
    return Utterance(
        utt_id=uid,
        path=noisy[uid][1],
        duration_sec=frames / sr,
        sr=sr,
        language=normalize_language(lang) if lang else UNKNOWN_LANGUAGE,
        distortion=primary_distortion(augs, m["noise_uid"] if m else "", rir, free),
        split=split,
        clean_path=clean[uid][1] if uid in clean else None,
        augmentations=augs,
        snr_db=snr if math.isfinite(snr) else None,
        speech_uid=m["speech_uid"] if m and not free else None,
        noise_id=m["noise_uid"] if m else None,
        rir_id=rir,
        speaker=lists.get("utt2spk", {}).get(uid) or (m["speech_sid"] if m else None),
        text=None if text in (None, NOT_AVAILABLE) else text,
        source=source,
    )
