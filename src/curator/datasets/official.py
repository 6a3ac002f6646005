"""Import a simulated set in the official URGENT list layout into manifest rows.

Inputs (one folder per split): ``wav.scp`` (required) and, when present, ``spk1.scp``, ``utt2fs``,
``utt2spk``, ``text``, ``utt2lang``, ``speech_length.scp``, plus the simulation log ``meta.tsv``, which
gives the distortion labels (see :mod:`curator.datasets.labels`). Relative paths resolve against ``root``:
the folder the simulation ran in, not the folder of the list. Files that fail their checks are returned
as counted rejections with a reason. Language codes are normalised to ISO 639-1 (``eng`` -> ``en``), the
list's code kept in the row's ``custom.language_orig``; codes no table knows are kept and counted.

:func:`speaker_holdout` splits one folder into train / dev / test by whole speakers (seeded), for a
dataset that has one simulated folder and no validation or test lists.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curator.contract.manifest import NOT_AVAILABLE, Utterance
from curator.datasets.checks import CheckRequest, FullScaleTally, Rejection, check_many
from curator.datasets.kaldi import NONE, ListError, read_kv, read_meta_tsv
from curator.datasets.labels import (
    UNKNOWN_LANGUAGE,
    language_label,
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
class ImportResult:
    """Manifest rows of one split (a list, or a lazy iterator that fills ``rejected`` and ``report`` as it runs).

    ``report`` holds dataset-specific figures for the manifest stage's metrics (speakers, languages, hold-out).
    """

    rows: Iterable[Utterance] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    report: dict = field(default_factory=dict)


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
               rejected: list[Rejection], only: Collection[str] | None = None,
               report: dict | None = None) -> Iterator[Utterance]:
    """Manifest rows of one split, sorted by utt_id, produced ``BLOCK`` utterances at a time.

    Rejected files are appended to ``rejected`` as the iteration reaches them, so a split of millions of
    files is checked and written without holding all its rows in memory. ``only`` restricts the split to
    those ids of ``wav.scp`` (a held-out part of a folder); ``report`` is filled, when the iteration ends,
    with the split's speaker count and its language codes (normalised and unknown, counted).
    """
    lists = read_layout(list_dir)
    meta = read_meta_tsv(meta_tsv) if meta_tsv is not None else None
    uids = sorted(lists["wav.scp"] if only is None else set(only) & lists["wav.scp"].keys())
    tally = _LabelTally()
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
            row = _row(uid, split, sr, frames, lists, meta, noisy, clean, source)
            tally.add(row)
            for side, files in (("noisy", noisy), ("clean", clean)):
                if (uid, side) in checked:
                    tally.full_scale.add(files[uid][1], checked[(uid, side)][3])
            yield row
    if report is not None:
        report.update(tally.summary())


class _LabelTally:
    """Speakers and language codes of the rows an import yields."""

    def __init__(self) -> None:
        self.speakers: set[str] = set()
        self.normalised: Counter = Counter()
        self.unknown: Counter = Counter()
        self.full_scale = FullScaleTally()

    def add(self, row: Utterance) -> None:
        if row.speaker is not None:
            self.speakers.add(row.speaker)
        orig = row.custom.get(LANGUAGE_ORIG)
        if orig is not None:
            self.normalised[f"{orig}->{row.language}"] += 1
        if not language_label(row.language)[1]:  # an unknown code is kept as given, so stays unknown
            self.unknown[row.language] += 1

    def summary(self) -> dict:
        return {"speakers": len(self.speakers),
                "languages_normalised": dict(sorted(self.normalised.items())),
                "languages_unknown": dict(sorted(self.unknown.items())),
                "languages_unknown_rows": sum(self.unknown.values()),
                "over_full_scale": self.full_scale.summary()}


LANGUAGE_ORIG = "language_orig"
"""``custom`` key of a row's language code as its list wrote it (only where normalisation changed it)."""


def import_split(split: str, list_dir: Path, meta_tsv: Path | None, root: Path, source: str,
                 checks: CheckConfig) -> ImportResult:
    """:func:`iter_split` collected into a list (for verification and tests)."""
    rejected: list[Rejection] = []
    rows = list(iter_split(split, list_dir, meta_tsv, root, source, checks, rejected))
    return ImportResult(rows, rejected)


def _check_files(uids: list[str], noisy: dict[str, tuple[str, str]], clean: dict[str, tuple[str, str]],
                 speech_free: set[str],
                 lists: dict[str, dict[str, str]], checks: CheckConfig) -> dict[tuple[str, str], tuple]:
    """(uid, 'noisy'|'clean') -> (reason, sr, frames, peak); in ``lists`` mode only files the lists cannot
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
    return {k: (r.reason, r.sr, r.frames, r.peak) for k, r in zip(keys, results, strict=True)}


def _consistency(uid: str, checked: dict, lists: dict[str, dict[str, str]], list_dir: Path,
                 meta: dict[str, dict[str, str]] | None, clean: dict[str, tuple[str, str]]
                 ) -> tuple[str | None, int, int]:
    """First problem of one utterance (or None) and its (sr, frames) as the lists and the audio agree."""
    list_sr = _int_field(lists, "utt2fs", uid, list_dir)
    list_len = _int_field(lists, "speech_length.scp", uid, list_dir)
    reason, sr, frames, _ = checked.get((uid, "noisy"), (None, list_sr, list_len, None))
    if reason is not None:
        return reason, 0, 0
    if list_sr is not None and sr != list_sr:
        return "sr_mismatch", 0, 0
    if list_len is not None and frames != list_len:
        return "length_mismatch", 0, 0
    if (uid, "clean") in checked:
        c_reason, c_sr, c_frames, _ = checked[(uid, "clean")]
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
    code = lists.get("utt2lang", {}).get(uid)
    language = language_label(code)[0] if code else UNKNOWN_LANGUAGE
    custom = {LANGUAGE_ORIG: code} if code and language != code else {}
    speaker = lists.get("utt2spk", {}).get(uid) or (m["speech_sid"] if m else None)
    return Utterance(
        utt_id=uid,
        path=noisy[uid][1],
        duration_sec=frames / sr,
        sr=sr,
        language=language,
        distortion=primary_distortion(augs, m["noise_uid"] if m else "", rir, free),
        split=split,
        clean_path=clean[uid][1] if uid in clean else None,
        augmentations=augs,
        snr_db=snr if math.isfinite(snr) else None,
        speech_uid=m["speech_uid"] if m and not free else None,
        noise_id=m["noise_uid"] if m else None,
        rir_id=rir,
        speaker=None if speaker == NONE else speaker,  # official placeholder of speech-free rows: no speaker
        text=None if text in (None, NOT_AVAILABLE) else text,
        source=source,
        custom=custom,
    )


# ------------------------------------------------------------------------------------------ speaker hold-out


def speaker_groups(lists: Mapping[str, Mapping[str, str]], meta: Mapping[str, Mapping[str, str]] | None
                   ) -> dict[str, str]:
    """utt_id -> hold-out group of every ``wav.scp`` entry: ``spk:<speaker>`` (``utt2spk``, else the log's
    ``speech_sid``), or ``utt:<utt_id>`` where no speaker is known (speech-free rows: each its own group)."""
    utt2spk = lists.get("utt2spk", {})
    out = {}
    for uid in lists["wav.scp"]:
        m = meta.get(uid) if meta is not None else None
        spk = utt2spk.get(uid) or (m["speech_sid"] if m else None)
        free = m is not None and m["speech_uid"] == NONE
        out[uid] = f"utt:{uid}" if free or not spk or spk == NONE else f"spk:{spk}"
    return out


def holdout_target(n_utts: int, fraction: float, cap: int | None) -> int:
    """Utterances a held-out split aims at: ``fraction`` of ``n_utts`` (at least 1 when > 0), at most ``cap``."""
    if fraction <= 0:
        return 0
    target = max(1, round(fraction * n_utts))
    return min(target, cap) if cap is not None else target


def speaker_holdout(group_of: Mapping[str, str], targets: Mapping[str, int], seed: int,
                    where: str = "the train folder") -> dict[str, set[str]]:
    """Utterance ids of each held-out split (``targets``: split -> utterances, filled in that order).

    Groups (speakers) are visited in a seeded random order; a group joins a split while the split is short of
    its target and adding it brings the split's size no further from the target; a split that would stay empty takes
    the smallest remaining group. No group is split, so no speaker is in two splits; at least one group stays
    in train. The result depends only on the (utt_id, group) pairs, ``targets`` and ``seed``.
    """
    names = sorted(set(group_of.values()))
    index = {g: i for i, g in enumerate(names)}
    members: list[list[str]] = [[] for _ in names]
    for uid in sorted(group_of):
        members[index[group_of[uid]]].append(uid)
    sizes = np.array([len(m) for m in members], dtype=np.int64)
    wanted = [s for s, t in targets.items() if t > 0]
    if len(names) < len(wanted) + 1:
        raise ListError(f"{where} has {len(names)} speaker(s): holding out {' and '.join(wanted)} by speaker needs at "
                        f"least {len(wanted) + 1}; give list folders (dataset.urgent2026.lists) or set "
                        f"dataset.urgent2026.holdout.<split>=0")
    free = [int(i) for i in np.random.default_rng(seed).permutation(len(names))]
    out: dict[str, set[str]] = {}
    for k, split in enumerate(wanted):
        target, n, taken, rest = targets[split], 0, [], []
        for g in free:
            c = int(sizes[g])
            if n < target and n + c - target <= target - n:
                taken.append(g)
                n += c
            else:
                rest.append(g)
        if not taken:  # every group overshoots: the smallest (first in the seeded order among equals)
            g = min(rest, key=lambda i: int(sizes[i]))
            taken, rest = [g], [i for i in rest if i != g]
        while len(rest) < len(wanted) - k:  # a group for every later split and for train: give back the last
            rest.append(taken.pop())
        out[split] = {uid for g in taken for uid in members[g]}
        free = rest
    return out
