"""The dataset plug-in interface: ``download | prepare | verify | manifest``, and the registry.

A dataset is one module in :mod:`curator.datasets.recipes` with a class decorated by
``@DATASETS.register("name")``; nothing else is edited to add one.
"""

from __future__ import annotations

import csv
import os
import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from curator.config import ConfigError
from curator.contract.data import DataParams
from curator.datasets.checks import InputPolicy
from curator.datasets.kaldi import NONE
from curator.datasets.official import CheckConfig, ImportResult
from curator.datasets.params import DatasetParams, SimulationParams
from curator.datasets.sources import SourceImport, SourcePolicy
from curator.io import atomic_open
from curator.registry import Registry

DATASETS: Registry[type[Dataset]] = Registry("dataset", package="curator.datasets.recipes")


@dataclass
class DatasetContext:
    """Validated sections plus the paths every stage of a dataset uses (relative to the repository root)."""

    data: DataParams
    dataset: DatasetParams
    simulation: SimulationParams

    @property
    def name(self) -> str:
        """The dataset's name: ``data.dataset``."""
        return self.data.dataset

    @property
    def external(self) -> Path:
        """``<data.root>/external/<dataset>``: the prepare stage's output folder."""
        return self.data.external_dir

    @property
    def checks(self) -> CheckConfig:
        """How the manifest stage checks audio (``dataset.audio_check`` and friends)."""
        return CheckConfig(self.dataset.audio_check, self.dataset.silence_peak, self.dataset.num_workers)

    def input_policy(self) -> InputPolicy:
        """A fresh rate/channel policy for one split (``dataset.sample_rates``, ``rate_policy``, ``channel_policy``)."""
        d = self.dataset
        return InputPolicy(d.sample_rates, d.rate_policy, d.channel_policy, d.num_workers)

    def manifest_path(self, split: str) -> Path:
        """``<data.root>/manifests/<data.dataset>/<split>.jsonl``."""
        return self.data.manifest_path(split)


class Dataset(ABC):
    """One dataset's four stages. ``manifest`` returns rows; the CLI validates, writes and reports them."""

    name: str = ""

    def __init__(self, ctx: DatasetContext) -> None:
        self.ctx = ctx

    def download(self) -> None:
        """Fetch what the dataset needs (a no-op where nothing is downloaded)."""
        print(f"[{self.name}] download: nothing to download")

    @abstractmethod
    def prepare(self) -> None:
        """Make or import the audio under ``ctx.external`` (the DVC ``prepare`` output)."""

    @abstractmethod
    def verify(self) -> dict:
        """Checksums, decodability and list consistency; returns a JSON-able report with ``ok``."""

    @abstractmethod
    def manifest(self, split: str) -> ImportResult:
        """Manifest rows of one split plus rejected files with reasons."""

    def sources(self) -> SourceImport:
        """The train split's source recordings (speech, noise, wind noise, RIRs) as checked rows plus counted
        skips (:mod:`curator.datasets.sources`); the ``sources`` stage writes them to the source manifest."""
        raise ConfigError(f"dataset '{self.name}' does not list its source recordings: implement sources() in its "
                          f"recipe, or keep curation.level: pairs")

    def source_policy(self) -> SourcePolicy:
        """``dataset.sample_rates`` / ``rate_policy`` / ``channel_policy`` / ``num_workers`` for the sources stage."""
        d = self.ctx.dataset
        return SourcePolicy(tuple(d.sample_rates), d.rate_policy, d.channel_policy, d.num_workers)

    def import_split(self, split: str) -> tuple[ImportResult, InputPolicy]:
        """:meth:`manifest` with the rate and channel policies applied to every row (what the manifest stage writes)."""
        res = self.manifest(split)
        policy = self.ctx.input_policy()
        return ImportResult(policy.apply(res.rows, res.rejected), res.rejected, res.report), policy


def build_dataset(ctx: DatasetContext) -> Dataset:
    """Instantiate the dataset named by ``data.dataset``."""
    return DATASETS.get(ctx.name)(ctx)


def fresh_tmp_dir(target: Path) -> Path:
    """An empty sibling folder to build ``target`` in; :func:`swap_dir` then swaps it in whole."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def swap_dir(tmp: Path, target: Path) -> None:
    """Replace ``target`` by the finished ``tmp`` folder (rename; the old folder is removed afterwards)."""
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    if old.exists():
        shutil.rmtree(old)


def write_reference_truth(path: Path, defect_of: dict[str, str]) -> None:
    """``utt_id,imperfect,defect`` sorted by utt_id (header only when nothing is known)."""
    with atomic_open(path, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["utt_id", "imperfect", "defect"])
        for uid in sorted(defect_of):
            w.writerow([uid, int(defect_of[uid] != NONE), defect_of[uid]])
