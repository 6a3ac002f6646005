"""``folder``: any tree of audio files (cards/folder.md).

Noisy inputs are the files matching a glob per split under ``root``; the clean target of ``.../noisy/x.wav``
is the same path with ``clean_from`` replaced by ``clean_to`` when that file exists. Language and
distortion come from path components (``/de/``, ``_reverb_``) or the configured defaults. Folders that
cannot be read are reported, not skipped silently.

Source recordings for source-level curation are the files matching ``sources.<kind>`` (a glob under ``root``
per kind: speech, noise, wind_noise, rir); a speech file's language comes from its path as above, its speaker
and any file's corpus from the folder ``sources.speaker_level`` / ``corpus_level`` levels above it.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from collections import Counter
from pathlib import Path

from curator.contract.data import REFERENCE_TRUTH, SPLITS
from curator.contract.manifest import ManifestError, Utterance
from curator.datasets.base import (
    DATASETS,
    Dataset,
    fresh_tmp_dir,
    swap_dir,
    write_reference_truth,
)
from curator.datasets.checks import CheckRequest, FullScaleTally, check_many
from curator.datasets.kaldi import ListError
from curator.datasets.labels import LANGUAGES, infer_distortion, infer_language
from curator.datasets.official import CheckConfig, ImportResult, Rejection
from curator.datasets.params import FolderParams
from curator.datasets.paths import to_manifest_path
from curator.datasets.sources import Candidate, Skipped, SourceImport, import_candidates
from curator.io import write_json

LISTING_FILE = "listing.json"
FILE_NAME_AMBIGUOUS = frozenset({"clip"})
"""Distortion words a file name does not count for (``clip_0001.wav`` names an audio clip); a folder name does."""
AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".sph", ".aif", ".aiff")
"""Suffixes (any case) :meth:`FolderDataset.unmatched_audio` counts as audio the globs left out."""
_UNSAFE = re.compile(r"[^\w.-]+")
"""Runs of characters a Kaldi list or a file name cannot hold safely (whitespace, quotes, slashes, ...)."""


def utt_id_of(rel: Path) -> str:
    """The utt_id of a file: its path relative to the root, without suffix, '/' -> '-', and every run of other
    characters than letters, digits, '_', '.', '-' -> '_' (so ``a b/c d.wav`` -> ``a_b-c_d``): Kaldi-style lists
    split on whitespace, so an id must hold none. Deterministic; two files mapping to one id are an error."""
    return _UNSAFE.sub("_", rel.with_suffix("").as_posix().replace("/", "-"))


@DATASETS.register("folder")
class FolderDataset(Dataset):
    """Globbed noisy files, a noisy->clean pairing rule, labels inferred from paths."""

    name = "folder"

    @property
    def params(self) -> FolderParams:
        """``dataset.folder``."""
        return self.ctx.dataset.folder

    def files(self, split: str) -> tuple[list[Path], list[str], list[Rejection]]:
        """(sorted noisy files of a split, unreadable folders under the root, matches that are not read: broken
        links and other non-files, and hidden files, which the glob skips: each named, so none is lost silently)."""
        pattern = getattr(self.params.globs, split)
        root = Path(self.params.root)
        if pattern is None:
            return [], [], []
        if not root.is_dir():
            raise ListError(f"dataset.folder.root '{root}' is not a readable folder")
        unreadable: list[str] = []
        for _ in os.walk(root, onerror=lambda exc: unreadable.append(str(exc.filename))):
            pass
        # one walk of the tree: hidden names (which the glob skips by default) are told apart afterwards, unless
        # the pattern itself names a hidden part
        matches = sorted(glob.glob(pattern, root_dir=root, recursive=True, include_hidden=True))
        names_hidden = any(part.startswith(".") for part in Path(pattern).parts)
        hidden = [f for f in matches if not names_hidden and any(p.startswith(".") for p in Path(f).parts)]
        found = [f for f in matches if names_hidden or not any(p.startswith(".") for p in Path(f).parts)]
        files = [root / f for f in found if (root / f).is_file()]
        skipped = [Rejection(utt_id_of(Path(f)), to_manifest_path(root / f), "broken_link")
                   for f in found if os.path.islink(root / f) and not (root / f).exists()]
        skipped += [Rejection(utt_id_of(Path(f)), to_manifest_path(root / f), "hidden_file")
                    for f in hidden if (root / f).is_file()]
        return files, sorted(unreadable), skipped

    def clean_of(self, noisy: Path) -> Path | None:
        """The paired clean file by the ``clean_from`` -> ``clean_to`` rule, if it exists. The rule rewrites the
        path below the root (as ``/<relative path>``, so ``/noisy/`` also matches a first folder ``noisy``), never
        the root itself: a root such as ``/data/noisy/corpus`` keeps its name."""
        if not self.params.clean_from:
            return None
        root = Path(self.params.root)
        rel = "/" + noisy.relative_to(root).as_posix()
        candidate = root / rel.replace(self.params.clean_from, self.params.clean_to).lstrip("/")
        return candidate if candidate != noisy and candidate.is_file() else None

    def unmatched_audio(self, matched: set[Path]) -> list[str]:
        """Audio-looking files under the root (any case of ``AUDIO_SUFFIXES``, hidden ones excepted) that no split's
        glob matched and that are no matched file's clean partner, relative to the root, sorted."""
        root = Path(self.params.root)
        out = []
        for folder, dirs, names in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in names:
                path = Path(folder) / name
                if (not name.startswith(".") and path.suffix.lower() in AUDIO_SUFFIXES and path not in matched
                        and path.is_file()):
                    out.append(path.relative_to(root).as_posix())
        return sorted(out)

    def prepare(self) -> None:
        """Check the tree and record what it holds (the DVC ``prepare`` output for this dataset)."""
        listing = {}
        matched: set[Path] = set()
        for split in SPLITS:
            files, unreadable, skipped = self.files(split)
            clean = [c for c in map(self.clean_of, files) if c is not None]
            matched.update(files, clean)
            listing[split] = {"pattern": getattr(self.params.globs, split), "files": len(files),
                              "paired": len(clean), "unreadable": unreadable,
                              "skipped": {"n": len(skipped), "by_reason": dict(sorted(Counter(
                                  r.reason for r in skipped).items())),
                                          "examples": [r.path for r in skipped[:self.ctx.dataset.max_report_examples]]}}
            if files and not clean and self.params.clean_from:
                print(f"[folder] warning: no {split} file has a clean partner by dataset.folder.clean_from -> clean_to "
                      f"({self.params.clean_from!r} -> {self.params.clean_to!r}, applied below the root): every "
                      f"{split} row will have no target", file=sys.stderr)
        if not any(v["files"] for v in listing.values()):
            raise ListError(f"no audio under '{self.params.root}' matches dataset.folder.globs "
                            f"({', '.join(str(v['pattern']) for v in listing.values())})")
        unmatched = self.unmatched_audio(matched)
        if unmatched:
            print(f"[folder] warning: {len(unmatched)} audio file(s) under '{self.params.root}' match no "
                  f"dataset.folder.globs pattern and are no clean partner (e.g. {', '.join(unmatched[:3])}); globs are "
                  "case-sensitive: widen them (e.g. **/*.[wW][aA][vV], **/*.flac) to include these", file=sys.stderr)
        out = self.ctx.external
        tmp = fresh_tmp_dir(out)
        write_json(tmp / LISTING_FILE, {"root": self.params.root, "splits": listing, "unmatched_audio": {
            "n": len(unmatched), "examples": unmatched[:self.ctx.dataset.max_report_examples]}})
        write_reference_truth(tmp / REFERENCE_TRUTH, {})
        swap_dir(tmp, out)

    def verify(self) -> dict:
        """Decode every noisy and clean file; report rejections per split."""
        report: dict = {}
        for split in SPLITS:  # (rejections include the glob's broken links and hidden files)
            res = self._import(split, CheckConfig("decode", self.ctx.dataset.silence_peak, self.ctx.dataset.num_workers))
            reasons: dict[str, int] = {}
            for r in res.rejected:
                reasons[r.reason] = reasons.get(r.reason, 0) + 1
            n_rows = len(list(res.rows))
            report[split] = {"utterances": n_rows + len(res.rejected), "rejected": dict(sorted(reasons.items())),
                             "ok": not res.rejected,
                             "examples": [f"{r.path}: {r.reason}" for r in res.rejected[:self.ctx.dataset.max_report_examples]]}
        report["ok"] = all(v["ok"] for v in report.values())
        return report

    def manifest(self, split: str) -> ImportResult:
        """Rows of one split (``lists`` checking falls back to headers: there are no lists)."""
        checks = self.ctx.checks
        if checks.mode == "lists":  # there are no lists to trust: read headers
            checks = CheckConfig("header", checks.silence_peak, checks.workers)
        return self._import(split, checks)

    def _labels(self, rel: str) -> tuple[str, str]:
        """(language, distortion) from path components, else the configured defaults. A folder name wins over
        the file name, whose ``_``-separated parts count except the ambiguous ones (``clip_0001.wav`` is an audio
        clip, not a clipped file)."""
        inf = self.params.infer
        lang = infer_language(rel, LANGUAGES) if inf.language_from_path else None
        dist = None
        if inf.distortion_from_path:
            path = Path(rel)
            words = [w for w in re.split(r"[_.\-]+", path.stem.lower()) if w and w not in FILE_NAME_AMBIGUOUS]
            dist = infer_distortion(path.parent.as_posix()) or infer_distortion("_".join(words))
        return lang or self.params.default_language, dist or self.params.default_distortion

    def _import(self, split: str, checks: CheckConfig) -> ImportResult:
        files, unreadable, skipped = self.files(split)
        root = Path(self.params.root)
        rows: list[Utterance] = []
        rejected = [Rejection("", d, "unreadable_folder") for d in unreadable] + skipped
        ids: dict[str, Path] = {}
        for f in files:
            uid = utt_id_of(f.relative_to(root))
            if uid in ids:
                raise ManifestError(f"dataset.folder: '{f}' and '{ids[uid]}' map to the same utt_id '{uid}'; "
                                    "rename one of them (ids keep letters, digits, '_', '.', '-' of the relative path)")
            ids[uid] = f
        clean = {u: self.clean_of(f) for u, f in ids.items()}
        labels = {u: self._labels(f.relative_to(root).as_posix()) for u, f in ids.items()}
        reqs = [CheckRequest(str(f), checks.mode, checks.silence_peak) for f in ids.values()]
        reqs += [CheckRequest(str(c), checks.mode, checks.silence_peak, allow_silent=labels[u][1] == "speech_free")
                 for u, c in clean.items() if c is not None]
        results = iter(check_many(reqs, checks.workers))
        noisy_res = {u: next(results) for u in ids}
        clean_res = {u: next(results) for u, c in clean.items() if c is not None}
        full_scale = FullScaleTally()
        for uid, path in ids.items():
            n, c = noisy_res[uid], clean_res.get(uid)
            reason = n.reason or (f"clean_{c.reason}" if c is not None and c.reason else None)
            where = None
            if reason is None and c is not None and c.sr != n.sr:
                reason = "clean_sr_mismatch"
                where = f"{to_manifest_path(path)} ({n.sr} Hz) vs {to_manifest_path(clean[uid])} ({c.sr} Hz)"  # type: ignore[arg-type]
            elif reason is None and c is not None and c.frames != n.frames:
                reason = "clean_length_mismatch"  # which side is cut short is unknowable: both named
                where = (f"{to_manifest_path(path)} ({n.frames} samples) vs "
                         f"{to_manifest_path(clean[uid])} ({c.frames} samples)")  # type: ignore[arg-type]
            if reason is not None:
                bad = clean[uid] if reason.startswith("clean_") else path
                rejected.append(Rejection(uid, where or to_manifest_path(bad), reason))  # type: ignore[arg-type]
                continue
            full_scale.add(to_manifest_path(path), n.peak)
            if c is not None:
                full_scale.add(to_manifest_path(clean[uid]), c.peak)  # type: ignore[arg-type]
            rows.append(Utterance(
                utt_id=uid, path=to_manifest_path(path), duration_sec=n.frames / n.sr, sr=int(n.sr),  # type: ignore[operator]
                language=labels[uid][0], distortion=labels[uid][1], split=split,
                clean_path=to_manifest_path(clean[uid]) if clean[uid] is not None else None,  # type: ignore[arg-type]
                source=self.name))
        return ImportResult(rows, rejected, {"over_full_scale": full_scale.summary()})

    def sources(self) -> SourceImport:
        """Files matching ``dataset.folder.sources.<kind>`` under the root, ids as :func:`utt_id_of` makes them."""
        cfg = self.params.sources
        root = Path(self.params.root)
        globs = {kind: getattr(cfg, kind) for kind in ("speech", "noise", "wind_noise", "rir")}
        if not globs["speech"]:
            return SourceImport(rows=[], skipped=[], report={"unavailable": (
                "no speech glob (dataset.folder.sources.speech is null): the source manifest is empty and source-level "
                "curation (curation.level: sources) is unavailable; give at least the speech glob to use it")})
        if not root.is_dir():
            raise ListError(f"dataset.folder.root '{root}' is not a readable folder")
        unreadable: list[str] = []
        for _ in os.walk(root, onerror=lambda exc: unreadable.append(str(exc.filename))):
            pass
        inferred_ids: set[str] = set()
        cands: list[Candidate] = []
        for kind, pattern in globs.items():
            if pattern is None:
                continue
            for found in sorted(glob.glob(pattern, root_dir=root, recursive=True)):
                path = root / found
                if not path.is_file():
                    continue
                rel = Path(found)
                c = Candidate(kind, utt_id_of(rel), str(path), None, str(path),
                              corpus=self._level(rel, cfg.corpus_level, "corpus_level") or self.name)
                if kind == "speech":
                    c.speaker = self._level(rel, cfg.speaker_level, "speaker_level")
                    inferred = infer_language(rel.as_posix(), LANGUAGES) if self.params.infer.language_from_path else None
                    c.language = inferred or self.params.default_language
                    if inferred is not None:
                        inferred_ids.add(c.source_id)
                cands.append(c)
        res = import_candidates(cands, self.source_policy(), self.ctx.dataset.max_report_examples,
                                {"root": str(root), "globs": globs})
        speech = [r.source_id for r in res.rows if r.kind == "speech"]
        res.report["languages_from_path"] = sum(1 for u in speech if u in inferred_ids)
        res.report["languages_default"] = len(speech) - res.report["languages_from_path"]
        res.skipped += [Skipped("", "", d, "unreadable_folder") for d in sorted(unreadable)]
        return res

    @staticmethod
    def _level(rel: Path, level: int | None, what: str) -> str | None:
        """Name of the folder ``level`` levels above ``rel`` (1 = its parent), None when ``level`` is None."""
        if level is None:
            return None
        folders = rel.parent.parts
        if level > len(folders):
            raise ListError(f"dataset.folder.sources.{what} = {level}, but '{rel}' has only {len(folders)} folder(s) "
                            f"above it under the root; lower the level or set it to null")
        return folders[-level]
