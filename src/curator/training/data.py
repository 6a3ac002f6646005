"""Training data: the manifest joined with the curated list, random crops, batches of one sampling rate.

The batch sampler draws everything random for an epoch at once (index permutations per sampling rate, batch
order, crop offsets) from a generator seeded by ``(seed, epoch)``, and hands the dataset ``(row, offset)``
pairs, so crops are reproducible whatever the number of loader workers. Rows without a ``clean_path``
(speech-free examples) get an all-zero target.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from curator.audio import AudioError, audio_info
from curator.contract.curated import read_meta
from curator.contract.manifest import read_manifest, resolve_path
from curator.contract.versions import ContractError

_PREVIEW = 5  # how many offending ids an error message lists


class CuratedListError(ValueError):
    """The curated list is unreadable, empty, or names utterances the manifest lacks."""


class Batch(NamedTuple):
    noisy: torch.Tensor  # (batch, time)
    clean: torch.Tensor  # (batch, time); zeros for speech-free rows
    sr: int


def read_curated_ids(path: str | os.PathLike[str]) -> tuple[list[str], int]:
    """The curated list's ``utt_id`` column in file order, and how many duplicate rows were dropped."""
    path = Path(path)
    if not path.is_file():
        raise CuratedListError(f"curated list '{path}' does not exist; run the select stage (`dvc repro select`)")
    try:
        read_meta(path)
    except ContractError as exc:
        raise CuratedListError(str(exc)) from exc
    try:
        df = pd.read_csv(path, dtype={"utt_id": str}, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CuratedListError(f"curated list '{path}' is not a readable CSV: {exc}") from exc
    if "utt_id" not in df.columns:
        raise CuratedListError(f"curated list '{path}' has no 'utt_id' column (columns: {', '.join(df.columns)})")
    ids = df["utt_id"].str.strip()
    blank = np.flatnonzero((ids == "").to_numpy())
    if len(blank):
        rows = ", ".join(str(i + 2) for i in blank[:_PREVIEW])  # +2: header line, 1-based lines
        raise CuratedListError(f"curated list '{path}': empty utt_id on line(s) {rows}")
    if ids.empty:
        raise CuratedListError(
            f"curated list '{path}' selects no utterances; nothing to train on. Check the select stage's "
            "parameters (e.g. select.K_hours, data.filters) and re-run `dvc repro select`"
        )
    unique = ids.drop_duplicates()
    return unique.tolist(), int(len(ids) - len(unique))


def join_curated(manifest: pd.DataFrame, ids: list[str], manifest_path: str, curated_path: str) -> pd.DataFrame:
    """Manifest rows of the curated ids, in curated order; a clear error if any id is unknown."""
    indexed = manifest.set_index("utt_id", drop=False)
    missing = [u for u in ids if u not in indexed.index]
    if missing:
        more = f" (and {len(missing) - _PREVIEW} more)" if len(missing) > _PREVIEW else ""
        raise CuratedListError(
            f"{len(missing)} utt_id(s) in '{curated_path}' are not in manifest '{manifest_path}': "
            f"{', '.join(repr(m) for m in missing[:_PREVIEW])}{more}. The curated list was made from another "
            "manifest; re-run scoring and selection on this one (`dvc repro select`)"
        )
    return indexed.loc[ids].reset_index(drop=True)


def load_curated_rows(manifest_path: str, curated_path: str) -> tuple[pd.DataFrame, int]:
    """Read, validate and join; returns the training rows and the number of duplicate ids dropped."""
    ids, duplicates = read_curated_ids(curated_path)
    return join_curated(read_manifest(manifest_path), ids, manifest_path, curated_path), duplicates


def validation_rows(manifest_path: str, max_utts: int | None) -> pd.DataFrame:
    """Dev rows that have a reference, evenly spaced over the utt_id order when capped (deterministic)."""
    rows = read_manifest(manifest_path)
    rows = rows[rows["clean_path"].notna()].sort_values("utt_id", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise CuratedListError(f"dev manifest '{manifest_path}' has no rows with a clean_path to validate on")
    if max_utts is not None and len(rows) > max_utts:
        pick = np.unique(np.linspace(0, len(rows) - 1, max_utts).round().astype(int))
        rows = rows.iloc[pick].reset_index(drop=True)
    return rows


def _read_segment(path: str, sr: int, start: int, frames: int) -> np.ndarray:
    try:
        with sf.SoundFile(path) as f:
            if f.samplerate != sr:
                raise AudioError(f"'{path}' is {f.samplerate} Hz but its manifest row says {sr} Hz")
            f.seek(start)
            x = f.read(frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"cannot decode '{path}': {exc}") from exc
    return x.mean(axis=1)


class PairDataset(Dataset):
    """Noisy/clean pairs; ``dataset[(row, offset)]`` reads a crop starting at ``offset`` (0..1) of the slack."""

    def __init__(self, rows: pd.DataFrame, crop_seconds: float | None) -> None:
        self.noisy = [str(resolve_path(p)) for p in rows["path"]]
        self.clean = [None if pd.isna(p) else str(resolve_path(p)) for p in rows["clean_path"]]
        self.sr = rows["sr"].to_numpy(dtype=np.int64)
        self.crop_seconds = crop_seconds

    def __len__(self) -> int:
        return len(self.noisy)

    def __getitem__(self, item: tuple[int, float]) -> tuple[np.ndarray, np.ndarray, int]:
        idx, offset = item
        sr = int(self.sr[idx])
        noisy_path, clean_path = self.noisy[idx], self.clean[idx]
        n = audio_info(noisy_path)[1]
        if clean_path is not None:
            n = min(n, audio_info(clean_path)[1])
        crop = n if self.crop_seconds is None else int(round(self.crop_seconds * sr))
        start = int(offset * max(n - crop, 0))
        frames = min(crop, n)
        noisy = _read_segment(noisy_path, sr, start, frames)
        clean = np.zeros_like(noisy) if clean_path is None else _read_segment(clean_path, sr, start, frames)
        if frames < crop:
            noisy, clean = np.pad(noisy, (0, crop - frames)), np.pad(clean, (0, crop - frames))
        return noisy, clean, sr


class SampleRateBatchSampler(Sampler[list[tuple[int, float]]]):
    """Batches whose rows share one sampling rate; shuffled per epoch from ``(seed, epoch)`` when asked."""

    def __init__(self, srs: np.ndarray, batch_size: int, seed: int, shuffle: bool) -> None:
        self.srs = np.asarray(srs)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def __len__(self) -> int:
        _, counts = np.unique(self.srs, return_counts=True)
        return int(sum(math.ceil(c / self.batch_size) for c in counts))

    def __iter__(self) -> Iterator[list[tuple[int, float]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        batches: list[np.ndarray] = []
        for sr in np.unique(self.srs):
            idx = np.flatnonzero(self.srs == sr)
            if self.shuffle:
                idx = rng.permutation(idx)
            batches += [idx[i:i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        order = rng.permutation(len(batches)) if self.shuffle else np.arange(len(batches))
        offsets = rng.random(len(self.srs)) if self.shuffle else np.zeros(len(self.srs))
        for b in order:
            yield [(int(i), float(offsets[i])) for i in batches[b]]


def collate_pairs(items: list[tuple[np.ndarray, np.ndarray, int]]) -> Batch:
    """Stack one sampling rate's pairs, zero-padding to the longest."""
    srs = {sr for _, _, sr in items}
    if len(srs) != 1:
        raise ValueError(f"a batch mixes sampling rates {sorted(srs)}; use SampleRateBatchSampler")
    longest = max(len(n) for n, _, _ in items)
    noisy = np.stack([np.pad(n, (0, longest - len(n))) for n, _, _ in items])
    clean = np.stack([np.pad(c, (0, longest - len(c))) for _, c, _ in items])
    return Batch(torch.from_numpy(noisy), torch.from_numpy(clean), srs.pop())


def make_loader(rows: pd.DataFrame, crop_seconds: float | None, batch_size: int, seed: int, shuffle: bool,
                num_workers: int) -> DataLoader:
    """A DataLoader over ``rows`` with sampling-rate-grouped batches."""
    dataset = PairDataset(rows, crop_seconds)
    sampler = SampleRateBatchSampler(dataset.sr, batch_size, seed, shuffle)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=num_workers,
                      persistent_workers=num_workers > 0)
