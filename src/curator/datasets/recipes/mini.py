"""``mini``: the embedded dataset, synthesised and simulated here, imported with the official importer.

Its train sources (``sources/train/*.scp`` and label lists, written by ``prepare``) are listed by the ``sources``
stage with corpus ``mini``; each speech source also carries ``custom.defect``, the reference defect ``prepare``
planted in it (``none`` | ``noise`` | ``reverb`` | ``bandlimit``, from ``reference_truth.csv`` and the train
``meta.tsv``), the ground truth a source scorer can be checked against.
"""

from __future__ import annotations

import csv
from collections import Counter

from curator.contract.data import REFERENCE_TRUTH
from curator.contract.sources import SPEECH
from curator.datasets.base import DATASETS, Dataset, fresh_tmp_dir, swap_dir
from curator.datasets.kaldi import NONE, ListError, read_meta_tsv
from curator.datasets.mini.build import CHECKSUM_FILE, SPLITS, build_mini
from curator.datasets.official import ImportResult, Rejection, iter_split
from curator.datasets.sources import LanguageTally, SourceImport, candidates_from_lists, import_candidates
from curator.datasets.verify import verify_checksums, verify_split


@DATASETS.register("mini")
class MiniDataset(Dataset):
    """Synthetic speech, generated noises and RIRs, URGENT-style simulation (cards/mini.md)."""

    name = "mini"

    def prepare(self) -> None:
        """Build into a temporary sibling folder and swap it in, so a failure never leaves half a dataset."""
        out = self.ctx.external
        tmp = fresh_tmp_dir(out)
        counts = build_mini(tmp, self.ctx.dataset.mini, self.ctx.simulation, self.ctx.dataset.seed,
                            self.ctx.dataset.num_workers)
        swap_dir(tmp, out)
        print(f"[mini] prepared {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))

    def verify(self) -> dict:
        """Checksums of every file, then decoding and list lengths per split."""
        out = self.ctx.external
        report = {"checksums": verify_checksums(out / CHECKSUM_FILE, out, self.ctx.dataset.num_workers)}
        for split in SPLITS:
            report[split] = verify_split(split, out / "lists" / split, out / f"simulation_{split}/log/meta.tsv",
                                         out, self.ctx.checks, self.ctx.dataset.max_report_examples)
        report["ok"] = all(v["ok"] for v in report.values())
        return report

    def manifest(self, split: str) -> ImportResult:
        """Import the simulated official layout of one split."""
        out = self.ctx.external
        rejected: list[Rejection] = []
        report: dict = {}
        rows = iter_split(split, out / "lists" / split, out / f"simulation_{split}/log/meta.tsv", out, self.name,
                          self.ctx.checks, rejected, report=report)
        return ImportResult(rows, rejected, report)

    SOURCE_LISTS = {"speech": "speech.scp", "noise": "noise.scp", "wind_noise": "wind_noise.scp", "rir": "rirs.scp"}
    """Kind -> the train source list ``prepare`` writes under ``sources/train``."""

    def sources(self) -> SourceImport:
        """The train source lists ``prepare`` wrote (paths relative to the external folder), corpus ``mini``."""
        out = self.ctx.external
        src = out / "sources" / "train"
        if not (src / "speech.scp").is_file():
            raise ListError(f"'{src / 'speech.scp'}' does not exist: run the prepare stage first (dvc repro prepare)")
        languages = LanguageTally()
        cands, report = candidates_from_lists(
            {kind: [(src / name, self.name)] for kind, name in self.SOURCE_LISTS.items()}, out,
            [src / "utt2spk"], [src / "text"], [src / "utt2lang"], languages)
        defect = self.speech_defects()
        for c in cands:
            if c.kind == SPEECH:
                c.custom = {**c.custom, "defect": defect.get(c.source_id, NONE)}
        res = import_candidates(cands, self.source_policy(), self.ctx.dataset.max_report_examples, report, languages)
        res.report["planted_defects"] = dict(sorted(Counter(r.custom["defect"] for r in res.rows
                                                            if r.kind == SPEECH).items()))
        return res

    def speech_defects(self) -> dict[str, str]:
        """Train speech uid -> planted defect, joined from ``reference_truth.csv`` (by simulated id) and the
        train ``meta.tsv`` (simulated id -> speech uid); every speech source is simulated once."""
        out = self.ctx.external
        meta = read_meta_tsv(out / "simulation_train" / "log" / "meta.tsv")
        truth = out / REFERENCE_TRUTH
        if not truth.is_file():
            raise ListError(f"'{truth}' does not exist: run the prepare stage first (dvc repro prepare)")
        with open(truth, newline="", encoding="utf-8") as f:
            defect_of = {r["utt_id"]: r["defect"] for r in csv.DictReader(f)}
        return {m["speech_uid"]: defect_of.get(uid, NONE) for uid, m in meta.items() if m["speech_uid"] != NONE}
