"""``mini``: the embedded dataset, synthesised and simulated here, imported with the official importer."""

from __future__ import annotations

from curator.datasets.base import DATASETS, Dataset, fresh_tmp_dir, swap_dir
from curator.datasets.mini.build import CHECKSUM_FILE, SPLITS, build_mini
from curator.datasets.official import ImportResult, Rejection, iter_split
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
        rows = iter_split(split, out / "lists" / split, out / f"simulation_{split}/log/meta.tsv", out, self.name,
                          self.ctx.checks, rejected)
        return ImportResult(rows, rejected)
