"""``urgent2026``: the official URGENT 2026 data in its list layout (cards/urgent2026.md).

``prepare`` either checks an existing layout (``simulate.mode: none``), simulates the configured source
lists with the builtin simulator (``builtin``), or runs the official scripts from a checkout (``official``);
simulated output lands in ``data/external/urgent2026``. ``manifest`` imports with the official importer.
"""

from __future__ import annotations

from pathlib import Path

from curator.contract.data import REFERENCE_TRUTH, SPLITS
from curator.datasets.base import (
    DATASETS,
    Dataset,
    fresh_tmp_dir,
    swap_dir,
    write_reference_truth,
)
from curator.datasets.kaldi import ListError, write_kv, write_meta_tsv
from curator.datasets.official import OPTIONAL_LISTS, ImportResult, Rejection, iter_split, read_layout
from curator.datasets.params import Urgent2026Params
from curator.datasets.paths import under
from curator.datasets.simulation.official import run_official_simulation
from curator.datasets.simulation.plan import plan_simulation
from curator.datasets.simulation.render import render_all, write_lists
from curator.datasets.simulation.sources import Sources
from curator.datasets.verify import verify_checksums, verify_split
from curator.io import sha256_file, write_json

FAILED_FILE = "failed"
"""``id error`` lines of rows the builtin simulator could not render (left out of the lists)."""
LAYOUT_FILE = "layout.json"
"""Written by ``prepare``: which lists were imported and their sha256, so DVC sees list changes."""


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

    def _layout(self, split: str) -> tuple[Path, Path | None, Path] | None:
        """(list folder, meta.tsv or None, root) of a split, or None when the split is not configured."""
        if self._simulated(split):
            ext = self.ctx.external
            return ext / "lists" / split, ext / f"simulation_{split}" / "log" / "meta.tsv", ext
        lists = getattr(self.params.lists, split)
        if lists is None:
            return None
        root = Path(self.params.root)
        meta = getattr(self.params.meta_tsv, split)
        return under(root, lists), (under(root, meta) if meta else None), root

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
        layout = {}
        for sp in SPLITS:
            if self._simulated(sp):
                continue
            where = self._layout(sp)
            if where is None:
                continue
            lists, meta, _ = where
            read_layout(lists)  # fails early, naming the missing or malformed list
            files = [lists / n for n in ("wav.scp", *OPTIONAL_LISTS) if (lists / n).is_file()]
            if meta is not None:
                if not meta.is_file():
                    raise ListError(f"simulation log '{meta}' does not exist (dataset.urgent2026.meta_tsv.{sp})")
                files.append(meta)
            layout[sp] = {f.name: sha256_file(f) for f in files}
        write_json(tmp / LAYOUT_FILE, {"root": self.params.root, "lists": layout, "simulate": mode})
        write_reference_truth(tmp / REFERENCE_TRUTH, {})
        swap_dir(tmp, out)

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
        """Optional checksum list, then decoding and list lengths per configured split."""
        report: dict = {}
        if self.params.checksums:
            root = Path(self.params.root)
            report["checksums"] = verify_checksums(under(root, self.params.checksums), root, self.ctx.dataset.num_workers)
        for split in SPLITS:
            where = self._layout(split)
            if where is not None:
                report[split] = verify_split(split, *where, self.ctx.checks, self.ctx.dataset.max_report_examples)
        report["ok"] = all(v["ok"] for v in report.values())
        return report

    def manifest(self, split: str) -> ImportResult:
        """Import one split (empty when the split is not configured)."""
        where = self._layout(split)
        if where is None:
            print(f"[urgent2026] {split}: not configured (dataset.urgent2026.lists.{split} is null): empty manifest")
            return ImportResult()
        lists, meta, root = where
        rejected: list[Rejection] = []
        return ImportResult(iter_split(split, lists, meta, root, self.name, self.ctx.checks, rejected), rejected)
