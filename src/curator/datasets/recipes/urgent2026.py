"""``urgent2026``: the official URGENT 2026 data in its list layout (cards/urgent2026.md).

``prepare`` either checks an existing layout (``simulate.mode: none``), simulates the configured source
lists with the builtin simulator (``builtin``), or runs the official scripts from a checkout (``official``);
simulated output lands in ``data/external/urgent2026``. ``manifest`` imports with the official importer.

Each split comes from a list folder (``lists.<split>``) or, for dev and test when that is null or absent, is
held out of the train folder by whole speakers (``holdout``, seeded by ``dataset.seed``); train then loses
those utterances. A train folder whose lists sit directly in ``root`` is found without overrides.

``sources`` lists the recordings of the ``sources`` lists (speech, noise, wind noise, RIRs with utt2spk, text and
utt2lang) for source-level curation; a source's corpus is its list's file stem (the official lists are one per
corpus), renamed by ``sources.corpus``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from curator.contract.data import REFERENCE_TRUTH, SPLITS
from curator.datasets.base import (
    DATASETS,
    Dataset,
    fresh_tmp_dir,
    swap_dir,
    write_reference_truth,
)
from curator.datasets.kaldi import ListError, read_meta_tsv, write_kv, write_meta_tsv
from curator.datasets.official import (
    OPTIONAL_LISTS,
    ImportResult,
    Rejection,
    holdout_target,
    iter_split,
    read_layout,
    speaker_groups,
    speaker_holdout,
)
from curator.datasets.params import Urgent2026Params
from curator.datasets.paths import under
from curator.datasets.simulation.official import run_official_simulation
from curator.datasets.simulation.plan import plan_simulation
from curator.datasets.simulation.render import render_all, write_lists
from curator.datasets.simulation.sources import Sources
from curator.datasets.sources import (
    LanguageTally,
    SourceImport,
    candidates_from_lists,
    corpus_of,
    import_candidates,
)
from curator.datasets.verify import verify_checksums, verify_split
from curator.io import sha256_file, write_json

FAILED_FILE = "failed"
"""``id error`` lines of rows the builtin simulator could not render (left out of the lists)."""
LAYOUT_FILE = "layout.json"
"""Written by ``prepare``: which lists were imported and their sha256, so DVC sees list changes."""
META_CANDIDATES = ("meta.tsv", "log/meta.tsv")
"""Where a split's simulation log is looked for in its list folder when ``meta_tsv.<split>`` is not there."""
HOLDOUT_SPLITS = ("dev", "test")


@dataclass(frozen=True)
class SplitSource:
    """Where one split's rows come from: ``list`` (its own folder), ``simulated`` (``prepare``'s output) or
    ``holdout`` (part of the train folder, by speaker)."""

    kind: str
    lists: Path
    meta: Path | None
    root: Path
    note: str = ""

    def describe(self) -> dict:
        """JSON-able form for layout.json and the manifest metrics."""
        out = {"source": self.kind, "lists": str(self.lists), "meta_tsv": None if self.meta is None else str(self.meta)}
        return {**out, "note": self.note} if self.note else out


@DATASETS.register("urgent2026")
class Urgent2026Dataset(Dataset):
    """Official lists (wav.scp, spk1.scp, utt2fs, ...) plus meta.tsv labels, under a configurable root."""

    name = "urgent2026"

    @property
    def params(self) -> Urgent2026Params:
        """``dataset.urgent2026``."""
        return self.ctx.dataset.urgent2026

    def download(self) -> None:
        """Nothing to fetch: explain where the data comes from."""
        print("[urgent2026] download: the data is assembled by the official scripts from the corpora's own "
              "sites (licences apply); see src/curator/datasets/cards/urgent2026.md. Nothing is fetched here.")

    def _simulated(self, split: str) -> bool:
        return self.params.simulate.mode != "none" and split == self.params.simulate.split

    def _meta(self, split: str, lists: Path, root: Path) -> Path | None:
        """``meta_tsv.<split>`` if it exists, else ``meta.tsv`` / ``log/meta.tsv`` in the list folder; null: none."""
        configured = getattr(self.params.meta_tsv, split)
        if configured is None:
            return None
        tried = [under(root, configured), *(lists / c for c in META_CANDIDATES)]
        for path in tried:
            if path.is_file():
                return path
        raise ListError(f"simulation log of {split} not found (tried {', '.join(map(str, tried))}): set "
                        f"dataset.urgent2026.meta_tsv.{split} to its path, or to null to import without labels "
                        f"(every row then gets the distortion 'noise')")

    def _source(self, split: str) -> SplitSource | None:
        """Where ``split`` comes from, or None when it has no rows (a hold-out of size 0)."""
        root = Path(self.params.root)
        if self._simulated(split):
            ext = self.ctx.external
            return SplitSource("simulated", ext / "lists" / split, ext / f"simulation_{split}" / "log" / "meta.tsv", ext)
        configured = getattr(self.params.lists, split)
        if split == "train":
            if configured is None:
                raise ListError("dataset.urgent2026.lists.train is null: name the folder of the training lists "
                                "(dev and test can be held out of it by speaker, see dataset.urgent2026.holdout)")
            lists = under(root, configured)
            if not (lists / "wav.scp").is_file() and (root / "wav.scp").is_file():
                return SplitSource("list", root, self._meta(split, root, root), root,
                                   f"no wav.scp in {lists}: the lists at the top of root are used")
            if not (lists / "wav.scp").is_file():
                raise ListError(f"'{lists}/wav.scp' does not exist, nor does '{root}/wav.scp': point "
                                f"dataset.urgent2026.root at the folder the official simulation ran in, or "
                                f"dataset.urgent2026.lists.train at the folder holding the official lists "
                                f"(wav.scp, spk1.scp, utt2fs, ...)")
            return SplitSource("list", lists, self._meta(split, lists, root), root)
        note = f"dataset.urgent2026.lists.{split} is null"
        other = "test" if split == "dev" else "dev"
        if configured is not None and configured == getattr(self.params.lists, other):
            raise ListError(f"dataset.urgent2026.lists.dev and .test are the same folder ({configured!r}): a folder "
                            f"can be one split only; set one of them to null to hold it out of train by speaker")
        if configured is not None:
            lists = under(root, configured)
            if lists.is_dir():
                read_layout(lists)  # a folder that is there but holds no wav.scp is an error, not a hold-out
                return SplitSource("list", lists, self._meta(split, lists, root), root)
            note = f"no folder {lists} (dataset.urgent2026.lists.{split})"
        if self.params.holdout.fraction(split) <= 0:
            return None
        train = self._source("train")
        assert train is not None
        return SplitSource("holdout", train.lists, train.meta, train.root,
                           f"{note}: held out of train by speaker")

    @cached_property
    def _holdout(self) -> dict[str, dict]:
        """split -> {"ids": utt ids, "report": figures} of the held-out splits (computed once, from the lists)."""
        splits = [s for s in HOLDOUT_SPLITS if (src := self._source(s)) is not None and src.kind == "holdout"]
        if not splits:
            return {}
        train = self._source("train")
        assert train is not None
        lists = read_layout(train.lists)
        meta = read_meta_tsv(train.meta) if train.meta is not None and "utt2spk" not in lists else None
        groups = speaker_groups(lists, meta)
        n, cap = len(groups), self.params.holdout.max_utterances
        targets = {s: holdout_target(n, self.params.holdout.fraction(s), cap) for s in splits}
        ids = speaker_holdout(groups, targets, self.ctx.dataset.seed, where=f"the train folder {train.lists}")
        def speakers(uids) -> tuple[int, int]:  # (speakers, rows without one: each its own group)
            named = {groups[u] for u in uids if groups[u].startswith("spk:")}
            return len(named), sum(1 for u in uids if groups[u].startswith("utt:"))

        of_spk, of_free = speakers(groups)
        out = {}
        for s in splits:
            held = ids.get(s, set())
            spk, free = speakers(held)
            out[s] = {"ids": held,
                      "report": {"of_utterances": n, "of_speakers": of_spk, "of_rows_without_speaker": of_free,
                                 "fraction": self.params.holdout.fraction(s), "target_utterances": targets[s],
                                 "held_out_utterances": len(held), "held_out_speakers": spk,
                                 "held_out_rows_without_speaker": free, "seed": self.ctx.dataset.seed}}
        return out

    def prepare(self) -> None:
        """Simulate (builtin/official) if asked, check the imported lists, record them in layout.json."""
        out = self.ctx.external
        tmp = fresh_tmp_dir(out)
        mode, split = self.params.simulate.mode, self.params.simulate.split
        if mode == "builtin":
            self._simulate_builtin(tmp, split)
        elif mode == "official":
            s = self.params.simulate
            n = run_official_simulation(s.python, Path(s.baseline_repo), s.config, tmp / f"simulation_{split}",
                                        tmp / "lists" / split, s.nj, self.ctx.simulation.highpass)
            print(f"[urgent2026] official simulation: {n} utterances")
        layout, splits = {}, {}
        for sp in SPLITS:
            if self._simulated(sp):
                splits[sp] = {"source": "simulated"}
                continue
            src = self._source(sp)
            if src is None:
                continue
            splits[sp] = src.describe()
            if src.note:
                print(f"[urgent2026] {sp}: {src.note}")
            if src.kind != "list":
                continue
            read_layout(src.lists)  # fails early, naming the missing or malformed list
            files = [src.lists / n for n in ("wav.scp", *OPTIONAL_LISTS) if (src.lists / n).is_file()]
            if src.meta is not None:
                files.append(src.meta)
            layout[sp] = {f.name: sha256_file(f) for f in files}
        if mode == "none":
            self._holdout  # noqa: B018  fails before anything is written (too few speakers)
        write_json(tmp / LAYOUT_FILE, {"root": self.params.root, "lists": layout, "splits": splits, "simulate": mode})
        write_reference_truth(tmp / REFERENCE_TRUTH, {})
        swap_dir(tmp, out)
        for sp, held in self._holdout.items():  # says what the manifest stage will hold out
            r = held["report"]
            print(f"[urgent2026] {sp}: {r['held_out_utterances']} of {r['of_utterances']} train utterances "
                  f"({r['held_out_speakers']} of {r['of_speakers']} speakers) held out")

    def _simulate_builtin(self, out: Path, split: str) -> None:
        src = self.params.sources
        sources = Sources.from_lists(self.params.root, src.speech, src.noise, src.wind_noise, src.rir, src.utt2spk,
                                     src.text, src.utt2lang)
        rows = plan_simulation(sources, self.ctx.simulation, f"simulation_{split}", salt=SPLITS.index(split))
        failed = render_all(rows, sources, self.ctx.simulation, out, self.ctx.dataset.num_workers,
                            desc=f"simulate {split}")
        log = out / f"simulation_{split}" / "log"
        write_meta_tsv(log / "meta.tsv", rows)
        write_lists([r for r in rows if r["id"] not in failed], sources.utt2lang, out / "lists" / split, None)
        if failed:
            write_kv(log / FAILED_FILE, failed)
            print(f"[urgent2026] {len(failed)} of {len(rows)} utterances could not be simulated "
                  f"(listed in {log / FAILED_FILE}), e.g. {next(iter(failed.values()))}")

    def verify(self) -> dict:
        """Optional checksum list, then decoding and list lengths per list folder (held-out splits are
        checked as part of train)."""
        report: dict = {}
        if self.params.checksums:
            root = Path(self.params.root)
            report["checksums"] = verify_checksums(under(root, self.params.checksums), root, self.ctx.dataset.num_workers)
        for split in SPLITS:
            src = self._source(split)
            if src is not None and src.kind != "holdout":
                report[split] = verify_split(split, src.lists, src.meta, src.root, self.ctx.checks,
                                             self.ctx.dataset.max_report_examples)
        report["ok"] = all(v["ok"] for v in report.values())
        return report

    def manifest(self, split: str) -> ImportResult:
        """Import one split: its list folder, or its hold-out of the train folder (train without them)."""
        src = self._source(split)
        if src is None:
            print(f"[urgent2026] {split}: no list folder and dataset.urgent2026.holdout.{split} = 0: empty manifest")
            return ImportResult(report={"source": "none"})
        only = None
        report: dict = src.describe()
        if src.kind == "holdout":
            held = self._holdout[split]
            only, report["holdout"] = held["ids"], held["report"]
        elif split == "train" and self._holdout:
            only = set(read_layout(src.lists)["wav.scp"]).difference(*(h["ids"] for h in self._holdout.values()))
            report["held_out"] = {s: len(h["ids"]) for s, h in self._holdout.items()}
        rejected: list[Rejection] = []
        rows = iter_split(split, src.lists, src.meta, src.root, self.name, self.ctx.checks, rejected, only, report)
        return ImportResult(rows, rejected, report)

    def sources(self) -> SourceImport:
        """Every source of ``dataset.urgent2026.sources`` (paths relative to ``root``), corpus by list stem."""
        src, root = self.params.sources, Path(self.params.root)
        if not src.speech:
            return SourceImport(rows=[], skipped=[], report={"unavailable": (
                "no speech source lists (dataset.urgent2026.sources.speech is empty): the source manifest is empty "
                "and source-level curation (curation.level: sources) is unavailable; list the official `uid fs path` "
                "speech lists (relative to dataset.urgent2026.root) to use it")})
        lists = {kind: [(under(root, p), corpus_of(p, src.corpus)) for p in getattr(src, kind)]
                 for kind in ("speech", "noise", "wind_noise", "rir")}
        unused = sorted(set(src.corpus) - {Path(p).stem for kind in lists for p, _ in lists[kind]})
        if unused:
            raise ListError(f"dataset.urgent2026.sources.corpus names list(s) {unused} that no source list has as "
                            f"its file stem (lists: {', '.join(p.stem for k in lists for p, _ in lists[k])})")
        languages = LanguageTally()
        cands, report = candidates_from_lists(lists, root, [under(root, p) for p in src.utt2spk],
                                              [under(root, p) for p in src.text],
                                              [under(root, p) for p in src.utt2lang], languages)
        return import_candidates(cands, self.source_policy(), self.ctx.dataset.max_report_examples, report, languages)
