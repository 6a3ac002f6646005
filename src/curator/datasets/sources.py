"""The ``sources`` stage: every recipe's train SOURCE recordings (speech, noise, wind noise, RIRs) as one
source manifest (:mod:`curator.contract.sources`) plus ``metrics/sources.json``.

A recipe names its sources as :class:`Candidate` rows (from official ``uid fs path`` lists with
:func:`candidates_from_lists`, or from globs); :func:`check_candidates` reads every file's header (threads,
in blocks) and turns each candidate into a :class:`~curator.contract.sources.Source` or a counted skip:

- ``missing`` (no such file), ``undecodable`` (no readable header), ``empty`` (zero frames);
- ``unsupported_rate``: the listed rate (the header's where nothing is listed) is not in ``dataset.sample_rates``
  and ``dataset.rate_policy`` is ``reject``; with ``resample`` the row is kept, ``custom.source_sr`` holds the
  listed rate and ``sr`` the rate decoders resample it to (as the pair manifest does);
- ``multichannel``: more than one channel with ``dataset.channel_policy: reject``; otherwise kept with
  ``custom.channels`` and ``custom.channel_policy``.

``duration_sec`` is the header's frames over the header's rate; a file stored at another rate than its list
says keeps the list's rate in ``sr`` (the simulator resamples it there) and the file's in ``custom.file_sr``.
A uid listed twice for one kind is an error naming both lists. Speech languages are normalised to ISO 639-1
(:func:`curator.datasets.labels.language_label`), the list's code kept in ``custom.language_orig``; speech with
no ``utt2lang`` entry takes a language token of its uid (``cv_de_12``), else ``unknown``, both counted.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import soundfile as sf

from curator.audio import target_rate
from curator.contract.manifest import NOT_AVAILABLE
from curator.contract.sources import KINDS, SPEECH, UNKNOWN, Source
from curator.datasets.kaldi import NONE, ListError, read_kv, read_source_list
from curator.datasets.labels import LANGUAGES, infer_language, language_label
from curator.datasets.official import LANGUAGE_ORIG
from curator.datasets.paths import resolve_many

BLOCK = 20_000
"""Headers read per block (bounds the futures alive at once on million-source lists)."""
SECONDS_PER_HOUR = 3600.0
HOURS_DECIMALS = 6
DEFAULT_METRICS = "metrics/sources.json"
SKIP_REASONS = ("missing", "undecodable", "empty", "unsupported_rate", "multichannel", "unreadable_folder")
"""Why a listed source is left out of the manifest (each counted, a few named, in metrics/sources.json)."""


@dataclass
class Candidate:
    """A source a recipe names, before its file is checked. ``path`` is absolute (or cwd-relative);
    ``listed_sr`` is the list's rate (None: take the header's); ``origin`` names the list or glob it came from."""

    kind: str
    source_id: str
    path: str
    listed_sr: int | None
    origin: str
    corpus: str | None = None
    speaker: str | None = None
    language: str = UNKNOWN
    text: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)


@dataclass
class Skipped:
    """A candidate left out of the manifest, and why."""

    kind: str
    source_id: str
    path: str
    reason: str


@dataclass
class SourceImport:
    """What a recipe's :meth:`~curator.datasets.base.Dataset.sources` returns: checked rows, counted skips and
    figures for the metrics (label normalisation, rate and channel policies, where the sources came from)."""

    rows: list[Source]
    skipped: list[Skipped]
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SourcePolicy:
    """``dataset.sample_rates`` / ``rate_policy`` / ``channel_policy`` / ``num_workers`` as the stage applies them."""

    sample_rates: tuple[int, ...]
    rate_policy: str
    channel_policy: str
    workers: int


# ------------------------------------------------------------------------------------------ candidates


def check_unique(candidates: Iterable[Candidate]) -> list[Candidate]:
    """The candidates, or :class:`ListError` naming both origins of a ``(kind, source_id)`` named twice."""
    seen: dict[tuple[str, str], str] = {}
    out = []
    for c in candidates:
        key = (c.kind, c.source_id)
        if key in seen:
            raise ListError(f"{c.kind} source '{c.source_id}' is listed in both {seen[key]} and {c.origin}: a uid "
                            f"must be unique within a kind; remove one entry or rename it")
        seen[key] = c.origin
        out.append(c)
    return out


def read_labels(paths: Sequence[str | os.PathLike[str]], what: str) -> dict[str, str]:
    """Union of ``uid value`` lists; the same uid with two different values is an error naming both lists."""
    out: dict[str, str] = {}
    origin: dict[str, str] = {}
    for p in paths:
        for uid, value in read_kv(p).items():
            if uid in out and out[uid] != value:
                raise ListError(f"{what} of '{uid}' is {out[uid]!r} in {origin[uid]} but {value!r} in {p}; "
                                f"keep one of them")
            out[uid] = value
            origin.setdefault(uid, str(p))
    return out


class LanguageTally:
    """How speech languages were found: normalised codes, unknown codes, uid tokens, none at all (counted over
    the listed speech, before the file checks, so a skipped file's label is counted too)."""

    def __init__(self) -> None:
        self.normalised: Counter[str] = Counter()
        self.unknown_codes: Counter[str] = Counter()
        self.from_uid = 0
        self.missing: list[str] = []

    def label(self, uid: str, code: str | None) -> tuple[str, dict[str, str]]:
        """(language, custom additions) of one speech source from its utt2lang ``code`` (None: no entry)."""
        if code is None:
            lang = infer_language(uid.replace("-", "_"), LANGUAGES)  # as labels.language_of does for pairs
            if lang is not None:
                self.from_uid += 1
                return lang, {}
            self.missing.append(uid)
            return UNKNOWN, {}
        lang, known = language_label(code)
        if not known:
            self.unknown_codes[code] += 1
        if lang != code:
            self.normalised[f"{code}->{lang}"] += 1
            return lang, {LANGUAGE_ORIG: code}
        return lang, {}

    def summary(self, max_examples: int) -> dict:
        return {"languages_normalised": dict(sorted(self.normalised.items())),
                "languages_unknown_codes": dict(sorted(self.unknown_codes.items())),
                "languages_from_uid": self.from_uid, "languages_missing": len(self.missing),
                "languages_missing_examples": self.missing[:max_examples]}


def candidates_from_lists(lists: Mapping[str, Sequence[tuple[str | os.PathLike[str], str]]], root: str | os.PathLike[str],
                          utt2spk: Sequence[str | os.PathLike[str]] = (), text: Sequence[str | os.PathLike[str]] = (),
                          utt2lang: Sequence[str | os.PathLike[str]] = (),
                          languages: LanguageTally | None = None) -> tuple[list[Candidate], dict]:
    """Candidates of official ``uid fs path`` lists: ``lists`` maps a kind to its (list file, corpus) pairs;
    listed paths resolve against ``root``. Speaker, text and language come from the label lists (speech only).
    Returns (candidates, report) where the report names the lists and counts label entries with no speech."""
    bad = set(lists) - set(KINDS)
    if bad:
        raise ListError(f"unknown source kind(s) {sorted(bad)}; valid: {', '.join(KINDS)}")
    spk = read_labels(utt2spk, "the speaker")
    txt = read_labels(text, "the transcript")
    lang = read_labels(utt2lang, "the language")
    tally = languages if languages is not None else LanguageTally()
    out: list[Candidate] = []
    for kind in KINDS:
        for list_path, corpus in lists.get(kind, ()):
            entries = read_source_list(list_path)
            uids = sorted(entries)
            absolute, _ = resolve_many([entries[u].path for u in uids], root)
            for uid, path in zip(uids, absolute, strict=True):
                c = Candidate(kind, uid, path, entries[uid].fs, str(list_path), corpus)
                if kind == SPEECH:
                    speaker = spk.get(uid)
                    c.speaker = None if speaker in (None, NONE) else speaker
                    t = txt.get(uid)
                    c.text = None if t in (None, NOT_AVAILABLE) else t
                    c.language, c.custom = tally.label(uid, lang.get(uid))
                out.append(c)
    check_unique(out)
    speech = {c.source_id for c in out if c.kind == SPEECH}
    report = {"lists": {k: [str(p) for p, _ in lists.get(k, ())] for k in KINDS},
              "label_entries_without_speech": {name: sum(1 for u in table if u not in speech)
                                               for name, table in (("utt2spk", spk), ("text", txt),
                                                                   ("utt2lang", lang))}}
    return out, report


# ------------------------------------------------------------------------------------------ checking


def _header(path: str) -> tuple[str | None, int, int, int]:
    """(reason or None, sample rate, frames, channels) from the header only."""
    if not os.path.isfile(path):
        return "missing", 0, 0, 0
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError):
        return "undecodable", 0, 0, 0
    if int(info.frames) <= 0 or int(info.samplerate) <= 0:
        return "empty", int(info.samplerate), 0, int(info.channels)
    return None, int(info.samplerate), int(info.frames), int(info.channels)


class PolicyTally:
    """What the rate and channel policies and the rate checks did (kept rows only)."""

    def __init__(self) -> None:
        self.resampled: Counter[str] = Counter()
        self.resampled_ids: list[str] = []
        self.multichannel: Counter[int] = Counter()
        self.multichannel_ids: list[str] = []
        self.file_rate_differs: Counter[str] = Counter()
        self.file_rate_ids: list[str] = []

    def summary(self, policy: SourcePolicy, max_examples: int) -> dict:
        return {"sample_rates": list(policy.sample_rates), "rate_policy": policy.rate_policy,
                "resampled": sum(self.resampled.values()), "resampled_by_rate": dict(sorted(self.resampled.items())),
                "resampled_examples": self.resampled_ids[:max_examples],
                "channel_policy": policy.channel_policy, "multichannel": sum(self.multichannel.values()),
                "multichannel_by_channels": {str(k): v for k, v in sorted(self.multichannel.items())},
                "multichannel_examples": self.multichannel_ids[:max_examples],
                "file_rate_differs": sum(self.file_rate_differs.values()),
                "file_rate_differs_by_rate": dict(sorted(self.file_rate_differs.items())),
                "file_rate_differs_examples": self.file_rate_ids[:max_examples]}


def check_candidates(candidates: Sequence[Candidate], policy: SourcePolicy, split: str = "train"
                     ) -> tuple[list[Source], list[Skipped], PolicyTally]:
    """Read every candidate's header and apply the skip reasons and policies of the module docstring."""
    check_unique(candidates)
    rows: list[Source] = []
    skipped: list[Skipped] = []
    tally = PolicyTally()
    rates = tuple(sorted(policy.sample_rates))
    with ThreadPoolExecutor(max(1, policy.workers)) as pool:
        for start in range(0, len(candidates), BLOCK):
            block = candidates[start : start + BLOCK]
            absolute, rel = resolve_many([c.path for c in block], os.getcwd())
            for c, man_path, (reason, file_sr, frames, channels) in zip(
                    block, rel, pool.map(_header, absolute), strict=True):
                tag = f"{c.kind}:{c.source_id}"
                sr = c.listed_sr if c.listed_sr is not None else file_sr
                custom = dict(c.custom)
                if reason is None and channels > 1:
                    if policy.channel_policy == "reject":
                        reason = "multichannel"
                    else:
                        custom.update(channels=channels, channel_policy=policy.channel_policy)
                if reason is None and sr not in rates:
                    if policy.rate_policy == "reject":
                        reason = "unsupported_rate"
                    else:
                        target = target_rate(sr, rates)
                        tally.resampled[f"{sr}->{target}"] += 1
                        tally.resampled_ids.append(tag)
                        custom["source_sr"] = sr
                        sr = target
                if reason is not None:
                    skipped.append(Skipped(c.kind, c.source_id, man_path, reason))
                    continue
                if channels > 1:
                    tally.multichannel[channels] += 1
                    tally.multichannel_ids.append(tag)
                if c.listed_sr is not None and file_sr != c.listed_sr:
                    custom["file_sr"] = file_sr
                    tally.file_rate_differs[f"{file_sr}->{c.listed_sr}"] += 1
                    tally.file_rate_ids.append(tag)
                rows.append(Source(source_id=c.source_id, kind=c.kind, path=man_path, sr=int(sr),
                                   duration_sec=frames / file_sr, split=split, corpus=c.corpus, speaker=c.speaker,
                                   language=c.language, text=c.text, custom=custom))
    return rows, skipped, tally


def import_candidates(candidates: Sequence[Candidate], policy: SourcePolicy, max_examples: int,
                      report: dict | None = None, languages: LanguageTally | None = None) -> SourceImport:
    """:func:`check_candidates` plus the report figures every recipe gives (policies, languages)."""
    rows, skipped, tally = check_candidates(candidates, policy)
    out = dict(report or {})
    out["input_policy"] = tally.summary(policy, max_examples)
    if languages is not None:
        out.update(languages.summary(max_examples))
    return SourceImport(rows, skipped, out)


# ------------------------------------------------------------------------------------------ metrics


def _hours(seconds: float) -> float:
    return round(seconds / SECONDS_PER_HOUR, HOURS_DECIMALS)


def _slices(rows: Sequence[Source], key: str) -> dict[str, dict[str, float]]:
    n: Counter[str] = Counter()
    sec: defaultdict[str, float] = defaultdict(float)
    for r in rows:
        v = str(getattr(r, key))
        n[v] += 1
        sec[v] += r.duration_sec
    return {v: {"n": n[v], "hours": _hours(sec[v])} for v in sorted(n)}


def sources_summary(name: str, manifest: str, res: SourceImport, max_examples: int) -> dict:
    """``metrics/sources.json``: rows and hours per kind, and within each kind per corpus, language and rate,
    speakers; skipped candidates counted by reason (and by kind), the first ``max_examples`` named."""
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        rows = [r for r in res.rows if r.kind == kind]
        kinds[kind] = {"sources": len(rows), "hours": _hours(sum(r.duration_sec for r in rows)),
                       "corpus": _slices(rows, "corpus"), "sr": _slices(rows, "sr"),
                       "skipped": sum(1 for s in res.skipped if s.kind == kind)}
        if kind == SPEECH:
            kinds[kind]["language"] = _slices(rows, "language")
            kinds[kind]["speakers"] = len({r.speaker for r in rows if r.speaker is not None})
            kinds[kind]["without_speaker"] = sum(1 for r in rows if r.speaker is None)
            kinds[kind]["with_text"] = sum(1 for r in rows if r.text is not None)
    reasons = Counter(s.reason for s in res.skipped)
    return {
        "dataset": name, "manifest": manifest,
        "sources": len(res.rows), "hours": _hours(sum(r.duration_sec for r in res.rows)),
        "kinds": kinds,
        "skipped": len(res.skipped), "skipped_by_reason": dict(sorted(reasons.items())),
        "skipped_examples": [{"kind": s.kind, "source_id": s.source_id, "path": s.path, "reason": s.reason}
                             for s in res.skipped[:max_examples]],
        **res.report,
    }


def corpus_of(list_path: str | os.PathLike[str], names: Mapping[str, str]) -> str:
    """A list's corpus label: ``names`` by the list's stem, else the stem itself (official lists: one per corpus)."""
    stem = Path(list_path).stem
    return names.get(stem, stem)
