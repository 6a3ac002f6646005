"""Training data: the manifest joined with the curated list, random crops, batches of one sampling rate.

The batch sampler draws everything random for an epoch at once (index permutations per sampling rate, batch
order, crop offsets) from a generator seeded by ``(seed, epoch)``, and hands the dataset ``(row, offset)``
pairs, so crops are reproducible whatever the number of loader workers. Rows without a ``clean_path``
(speech-free examples) get an all-zero target. Rows are decoded as their manifest ``custom`` says (resampled from
``source_sr``, channels by ``channel_policy``); :func:`screen_rows` drops, before training, every row whose audio
could not reach a loss (undecodable, NaN/inf, wrong or unsupported rate), and the backends name them in the metrics.
The manifest is the one the curated list's sidecar names (pairs simulated from a source selection), else the
dataset's train manifest. With ``train.data.dynamic_mixing`` the noisy side is mixed afresh every epoch from each
row's clean speech (:class:`DynamicMixingDataset`).
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from curator.audio import AudioError, NonFiniteAudioError, audio_info, load_audio, row_decoding, to_mono
from curator.contract.curated import read_meta
from curator.contract.manifest import read_manifest, resolve_path
from curator.contract.versions import ContractError

if TYPE_CHECKING:
    from curator.datasets.params import SimulationParams
    from curator.datasets.simulation.sources import Sources

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


def curated_sidecar(curated_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The curated list's version-checked ``_meta.json`` sidecar ({} when the list has none)."""
    try:
        meta = read_meta(curated_path)
    except ContractError as exc:
        raise CuratedListError(str(exc)) from exc
    return meta or {}


def train_manifest_path(curated_path: str | os.PathLike[str], default: str | os.PathLike[str]) -> str:
    """The manifest the curated list's rows come from: the one its sidecar names under ``manifest`` (the pairs
    simulated from a source selection, ``curator.datasets.simulation.from_selection``), else ``default`` (the
    dataset's train manifest, ``data.manifest_path("train")``)."""
    named = curated_sidecar(curated_path).get("manifest")
    if named is None:
        return str(default)
    if not isinstance(named, str) or not named:
        raise CuratedListError(f"curated list sidecar of '{curated_path}': 'manifest' must be a path, got {named!r}")
    if not resolve_path(named).is_file():
        raise CuratedListError(f"the sidecar of curated list '{curated_path}' names manifest '{named}', which does "
                               "not exist; re-run the stage that wrote the list (dvc repro source_simulate)")
    return named


def load_curated_rows(manifest_path: str, curated_path: str) -> tuple[pd.DataFrame, int]:
    """Read, validate and join; returns the training rows and the number of duplicate ids dropped."""
    ids, duplicates = read_curated_ids(curated_path)
    return join_curated(read_manifest(manifest_path), ids, manifest_path, curated_path), duplicates


def validation_rows(manifest_path: str, max_utts: int | None) -> tuple[pd.DataFrame, int]:
    """Dev rows that have a reference, evenly spaced over the utt_id order when capped (deterministic), and the
    number of dev rows left out because they have no ``clean_path`` (a validation loss needs a target; the
    train stage counts them in its metrics as ``val_without_target``)."""
    rows = read_manifest(manifest_path)
    has_target = rows["clean_path"].notna()
    rows = rows[has_target].sort_values("utt_id", kind="stable").reset_index(drop=True)
    if rows.empty:
        raise CuratedListError(f"dev manifest '{manifest_path}' has no rows with a clean_path to validate on")
    if max_utts is not None and len(rows) > max_utts:
        pick = np.unique(np.linspace(0, len(rows) - 1, max_utts).round().astype(int))
        rows = rows.iloc[pick].reset_index(drop=True)
    return rows, int((~has_target).sum())


def _read_segment(path: str, sr: int, start: int, frames: int, resample: bool = False,
                  channels: str = "mean") -> np.ndarray:
    """``frames`` samples from ``start`` at ``sr``, mono by the row's channel policy; a resampled row (its
    file at another rate, ``custom.source_sr``) is decoded whole at ``sr`` and cut. Non-finite samples are an
    error naming the file: they must never reach a loss."""
    if resample:
        x = load_audio(path, sr=sr, channels=channels)[0][start:start + frames]
    else:
        try:
            with sf.SoundFile(path) as f:
                if f.samplerate != sr:
                    raise AudioError(f"'{path}' is {f.samplerate} Hz but its manifest row says {sr} Hz")
                f.seek(start)
                x = to_mono(f.read(frames, dtype="float32", always_2d=True), channels)
        except (sf.LibsndfileError, RuntimeError, OSError) as exc:
            raise AudioError(f"cannot decode '{path}': {exc}") from exc
    if not np.isfinite(x).all():
        raise NonFiniteAudioError(f"'{path}' contains NaN or infinite samples")
    return x


def _frames(path: str, sr: int, resample: bool) -> int:
    """Length of a file in samples at ``sr`` (a resampled file's length scaled from its own rate)."""
    file_sr, n, _ = audio_info(path)
    return int(n * sr // file_sr) if resample else n


class PairDataset(Dataset):
    """Noisy/clean pairs; ``dataset[(row, offset)]`` reads a crop starting at ``offset`` (0..1) of the slack."""

    def __init__(self, rows: pd.DataFrame, crop_seconds: float | None, crop_samples: int | None = None) -> None:
        """``crop_samples`` (official: at most that many samples, shorter utterances whole) wins over
        ``crop_seconds`` (the same duration at every rate, shorter utterances zero-padded to it)."""
        self.noisy = [str(resolve_path(p)) for p in rows["path"]]
        self.clean = [None if pd.isna(p) else str(resolve_path(p)) for p in rows["clean_path"]]
        self.sr = rows["sr"].to_numpy(dtype=np.int64)
        decoding = [row_decoding(r) for r in rows.to_dict("records")]
        self.resample = [t is not None for t, _ in decoding]
        self.channels = [c for _, c in decoding]
        self.crop_seconds = crop_seconds
        self.crop_samples = crop_samples

    def __len__(self) -> int:
        return len(self.noisy)

    def __getitem__(self, item: tuple[int, float]) -> tuple[np.ndarray, np.ndarray, int]:
        idx, offset = item
        sr = int(self.sr[idx])
        noisy_path, clean_path = self.noisy[idx], self.clean[idx]
        how = {"resample": self.resample[idx], "channels": self.channels[idx]}
        n = _frames(noisy_path, sr, self.resample[idx])
        if clean_path is not None:
            n = min(n, _frames(clean_path, sr, self.resample[idx]))
        if self.crop_samples is not None:
            crop = min(n, self.crop_samples)
        else:
            crop = n if self.crop_seconds is None else int(round(self.crop_seconds * sr))
        start = int(offset * max(n - crop, 0))
        frames = min(crop, n)
        noisy = _read_segment(noisy_path, sr, start, frames, **how)  # type: ignore[arg-type]
        clean = np.zeros_like(noisy) if clean_path is None else _read_segment(clean_path, sr, start, frames, **how)  # type: ignore[arg-type]
        frames = min(len(noisy), len(clean), frames)
        noisy, clean = noisy[:frames], clean[:frames]
        if frames < crop:
            noisy, clean = np.pad(noisy, (0, crop - frames)), np.pad(clean, (0, crop - frames))
        return noisy, clean, sr


class SampleRateBatchSampler(Sampler[list[tuple[int, float]]]):
    """Batches whose rows share one sampling rate; shuffled per epoch from ``(seed, epoch)`` when asked.

    Under data parallelism (``set_shard(rank, world)``) every rank draws the same global batches of
    ``batch_size x world`` rows of one rate and takes its own slice of each, so ``world`` processes of batch B
    train on exactly what one process of batch ``B x world`` would (gradients are averaged). A short last
    batch of a rate is shared out as evenly as possible, a rank whose slice would be empty repeats rows of
    that batch: every rank gets the same number of batches, never an empty one (a collective would hang).
    """

    def __init__(self, srs: np.ndarray, batch_size: int, seed: int, shuffle: bool) -> None:
        self.srs = np.asarray(srs)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.rank = 0
        self.world = 1
        self._skip = 0

    def __len__(self) -> int:
        _, counts = np.unique(self.srs, return_counts=True)
        return int(sum(math.ceil(c / (self.batch_size * self.world)) for c in counts))

    def set_shard(self, rank: int, world: int) -> None:
        """This process's rank among ``world`` data-parallel processes."""
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in [0, {world})")
        self.rank, self.world = rank, world

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration draws (Lightning calls this before every epoch)."""
        self.epoch = epoch

    def skip_next(self, n_batches: int) -> None:
        """The next iteration starts after its first ``n_batches`` batches (a resumed epoch)."""
        self._skip = n_batches

    def _my_slice(self, batch: np.ndarray) -> np.ndarray:
        if self.world == 1:
            return batch
        bounds = np.linspace(0, len(batch), self.world + 1).round().astype(int) if len(batch) < (
            self.batch_size * self.world) else np.arange(self.world + 1) * self.batch_size
        mine = batch[bounds[self.rank]:bounds[self.rank + 1]]
        return mine if len(mine) else batch[[self.rank % len(batch)]]

    def __iter__(self) -> Iterator[list[tuple[int, float]]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        skip, self._skip = self._skip, 0
        size = self.batch_size * self.world
        batches: list[np.ndarray] = []
        for sr in np.unique(self.srs):
            idx = np.flatnonzero(self.srs == sr)
            if self.shuffle:
                idx = rng.permutation(idx)
            batches += [idx[i:i + size] for i in range(0, len(idx), size)]
        order = rng.permutation(len(batches)) if self.shuffle else np.arange(len(batches))
        offsets = rng.random(len(self.srs)) if self.shuffle else np.zeros(len(self.srs))
        for b in order[skip:]:
            yield [(int(i), float(offsets[i])) for i in self._my_slice(batches[b])]


def collate_pairs(items: list[tuple[np.ndarray, np.ndarray, int]]) -> Batch:
    """Stack one sampling rate's pairs, zero-padding to the longest."""
    srs = {sr for _, _, sr in items}
    if len(srs) != 1:
        raise ValueError(f"a batch mixes sampling rates {sorted(srs)}; use SampleRateBatchSampler")
    longest = max(len(n) for n, _, _ in items)
    noisy = np.stack([np.pad(n, (0, longest - len(n))) for n, _, _ in items])
    clean = np.stack([np.pad(c, (0, longest - len(c))) for _, c, _ in items])
    return Batch(torch.from_numpy(noisy), torch.from_numpy(clean), srs.pop())


# ------------------------------------------------------------------------------------ dynamic mixing


@dataclass
class DynamicMixing:
    """What dynamic mixing draws from: the source pools (the selected sources, or every source of the manifest),
    the ``simulation`` params and the training seed; where they came from is recorded in the frozen config."""

    sources: Sources
    sim: SimulationParams
    seed: int
    sources_path: str
    selection_path: str | None

    def describe(self) -> dict[str, Any]:
        """The pool's files and sizes (the frozen config, hence the resume fingerprint, covers them)."""
        from curator.io import sha256_file

        return {"sources": self.sources_path, "sources_sha256": sha256_file(self.sources_path),
                "selection": self.selection_path,
                "selection_sha256": None if self.selection_path is None else sha256_file(self.selection_path),
                "pool": {"speech": len(self.sources.speech), "noise": len(self.sources.noise),
                         "wind_noise": len(self.sources.wind), "rir": len(self.sources.rir)}}


def mixing_pool_paths(curated_path: str | os.PathLike[str], default_sources: str | os.PathLike[str]
                      ) -> tuple[str, str | None]:
    """(source manifest, selected-sources CSV or None) dynamic mixing draws from: those the curated list's sidecar
    names (``sources`` / ``selection``: a list simulated from a source selection), else every source of
    ``default_sources`` (``data.sources_manifest_path``)."""
    meta = curated_sidecar(curated_path)
    sources, selection = meta.get("sources"), meta.get("selection")
    if sources is None:
        sources, selection = str(default_sources), None
    for what, path in (("source manifest", sources), ("selected-sources list", selection)):
        if path is not None and not resolve_path(path).is_file():
            raise CuratedListError(f"train.data.dynamic_mixing draws from the {what} '{path}', which does not exist; "
                                   "run the sources stage (dvc repro sources) or the stages that wrote the curated list")
    return str(sources), None if selection is None else str(selection)


def load_dynamic_mixing(rows: pd.DataFrame, sources_path: str, selection_path: str | None, sim: SimulationParams,
                        seed: int) -> DynamicMixing:
    """The pools for ``rows``; an error naming the rows whose speech is not in the pool, or a rate no noise
    reaches (the simulation draws noise at the speech's rate or above)."""
    from curator.datasets.simulation.from_selection import SelectionError, load_pool, read_selected_ids

    try:
        selected = read_selected_ids(selection_path) if selection_path is not None else None
        pool = load_pool(sources_path, selected).sources
    except (SelectionError, ContractError, ValueError) as exc:
        raise CuratedListError(f"train.data.dynamic_mixing: {exc}") from exc
    speech = [None if pd.isna(u) else str(u) for u in rows.get("speech_uid", pd.Series([None] * len(rows)))]
    missing = sorted({u for u in speech if u is not None and u not in pool.speech})
    if missing:
        more = f" (and {len(missing) - _PREVIEW} more)" if len(missing) > _PREVIEW else ""
        raise CuratedListError(
            f"train.data.dynamic_mixing: {len(missing)} speech_uid(s) of the curated rows are not in the pool "
            f"'{sources_path}'{'' if selection_path is None else f' (selection {selection_path})'}: "
            f"{', '.join(repr(m) for m in missing[:_PREVIEW])}{more}")
    if not pool.noise:
        raise CuratedListError(f"train.data.dynamic_mixing: the pool '{sources_path}' has no noise source")
    top = max(e.fs for e in pool.noise.values())
    high = sorted({int(sr) for sr in rows["sr"] if int(sr) > top})
    if high:
        raise CuratedListError(f"train.data.dynamic_mixing: rows at {high} Hz, but no noise source of the pool "
                               f"'{sources_path}' is sampled that high (highest {top} Hz)")
    return DynamicMixing(pool, sim, seed, sources_path, selection_path)


class DynamicMixingDataset(Dataset):
    """Each row's clean speech mixed afresh every epoch: ``dataset[(row, offset, epoch)]`` draws that row's noise
    (or wind noise), SNR, RIR and augmentations with the official probabilities from a generator seeded by
    ``(train.seed, epoch, row)`` (as the official trainer's ``train_set_dynamic_mixing`` draws per example),
    and renders the crop in memory with the simulator's own functions. The same (seed, epoch, row, offset) gives
    the same pair, so a resumed run replays its epoch exactly; another epoch gives another mixture.

    The crop (``offset`` of the slack, as :class:`PairDataset`) is cut from the speech source first and the
    simulation runs on it (the official one simulates its first ``max_duration`` samples). Speech-free rows
    (no ``speech_uid``) are noise only at the row's duration, with an all-zero target.
    """

    def __init__(self, rows: pd.DataFrame, mixing: DynamicMixing, crop_seconds: float | None,
                 crop_samples: int | None = None) -> None:
        from curator.datasets.simulation.plan import PoolIndex

        self.mixing = mixing
        self.index = PoolIndex.of(mixing.sources)  # once, not per drawn example
        self.speech = [None if pd.isna(u) else str(u) for u in rows["speech_uid"]]
        self.sr = rows["sr"].to_numpy(dtype=np.int64)
        self.frames_free = np.round(rows["duration_sec"].to_numpy(dtype=np.float64) * self.sr).astype(np.int64)
        self.crop_seconds = crop_seconds
        self.crop_samples = crop_samples

    def __len__(self) -> int:
        return len(self.speech)

    def _length(self, idx: int) -> int:
        uid, sr = self.speech[idx], int(self.sr[idx])
        if uid is None:
            return int(self.frames_free[idx])
        src = self.mixing.sources
        return int(src.lengths[uid] * sr // src.speech[uid].fs)

    def draw(self, idx: int, offset: float, epoch: int) -> tuple[dict[str, str], int, int]:
        """Row ``idx``'s draws for ``epoch`` (a ``meta.tsv`` row: noise_uid, snr_dB, rir_uid, augmentation ...),
        the crop's first speech sample and the crop length (before padding)."""
        from curator.datasets.simulation.plan import plan_row

        m, sr = self.mixing, int(self.sr[idx])
        n = self._length(idx)
        crop = self._crop(n, sr)
        start, frames = int(offset * max(n - crop, 0)), min(crop, n)
        rng = np.random.default_rng([m.seed, epoch, idx])
        row = plan_row(f"dm-s{m.seed}-e{epoch}-r{idx}", self.speech[idx], sr, frames, m.sources, m.sim, rng, self.index)
        return row, start, frames

    def _crop(self, n: int, sr: int) -> int:
        if self.crop_samples is not None:
            return min(n, self.crop_samples)
        return n if self.crop_seconds is None else int(round(self.crop_seconds * sr))

    def __getitem__(self, item: tuple[int, float, int]) -> tuple[np.ndarray, np.ndarray, int]:
        from curator.datasets.simulation.distortions import fit_length
        from curator.datasets.simulation.render import mix_row

        idx, offset, epoch = item
        m, sr, uid = self.mixing, int(self.sr[idx]), self.speech[idx]
        row, start, frames = self.draw(idx, offset, epoch)
        crop = self._crop(self._length(idx), sr)
        if uid is None:
            speech = np.zeros(frames, dtype=np.float64)
        else:
            path = m.sources.resolve(m.sources.speech[uid].path)
            speech = fit_length(load_audio(path, sr=sr)[0][start:start + frames], frames)
        noisy, clean = mix_row(row, speech, m.sources, m.sim)
        if not (np.isfinite(noisy).all() and np.isfinite(clean).all()):
            raise NonFiniteAudioError(f"dynamic mixing of row {idx} (speech '{uid}', epoch {epoch}) gave NaN or "
                                      f"infinite samples: {row}")
        if frames < crop:
            noisy, clean = np.pad(noisy, (0, crop - frames)), np.pad(clean, (0, crop - frames))
        return noisy, clean, sr


class EpochBatchSampler(SampleRateBatchSampler):
    """:class:`SampleRateBatchSampler` whose items also carry the epoch they were drawn for (what dynamic mixing
    seeds each example with; the index and offset draws are the parent's, so resume and sharding work as there)."""

    def __iter__(self) -> Iterator[list[tuple[int, float, int]]]:  # type: ignore[override]
        epoch = self.epoch
        for batch in super().__iter__():
            yield [(i, o, epoch) for i, o in batch]


def make_loader(rows: pd.DataFrame, crop_seconds: float | None, batch_size: int, seed: int, shuffle: bool,
                num_workers: int, crop_samples: int | None = None, mixing: DynamicMixing | None = None,
                pin_memory: bool = False, prefetch_factor: int = 2, persistent_workers: bool = True) -> DataLoader:
    """A DataLoader over ``rows`` with sampling-rate-grouped batches (crops: see PairDataset); with ``mixing``,
    the pairs are mixed afresh every epoch from each row's clean speech (:class:`DynamicMixingDataset`).

    Decoding, resampling and mixing run in ``__getitem__``, i.e. in the ``num_workers`` worker processes (each
    loads ``prefetch_factor`` batches ahead; ``persistent_workers`` keeps them between epochs); the training
    process only collates. Every random draw comes from the batch sampler (``(seed, epoch)``) or, for dynamic
    mixing, from ``(seed, epoch, row)``, so the batches are the same whatever ``num_workers``.
    ``pin_memory`` puts batches in page-locked memory for asynchronous copies to a GPU."""
    dataset: Dataset
    if mixing is not None:
        dataset = DynamicMixingDataset(rows, mixing, crop_seconds, crop_samples)
        sampler: SampleRateBatchSampler = EpochBatchSampler(dataset.sr, batch_size, seed, shuffle)
    else:
        dataset = PairDataset(rows, crop_seconds, crop_samples)
        sampler = SampleRateBatchSampler(dataset.sr, batch_size, seed, shuffle)
    workers = {"prefetch_factor": prefetch_factor, "persistent_workers": persistent_workers} if num_workers > 0 else {}
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_pairs, num_workers=num_workers,
                      pin_memory=pin_memory, **workers)


# ------------------------------------------------------------------------------------ screening

MAX_SKIPPED_LISTED = 20
"""Skipped utterances named in the train metrics (all are counted)."""


def _check_file(path: str, sr: int, resample: bool, channels: str) -> str | None:
    """Why a file cannot be trained on (missing, decode error, wrong rate, NaN/inf samples, empty), else None."""
    if not os.path.isfile(path):
        return f"missing: '{path}' does not exist (moved or deleted since the manifest was built?)"
    try:
        if resample:
            x, _ = load_audio(path, sr=sr, channels=channels)
        else:
            x, file_sr = load_audio(path, channels=channels)
            if file_sr != sr:
                return f"sr_mismatch: '{path}' is {file_sr} Hz but its manifest row says {sr} Hz"
    except NonFiniteAudioError:
        return f"nonfinite: '{path}' contains NaN or infinite samples"
    except AudioError as exc:
        return f"undecodable: {exc}"
    return f"empty: '{path}' has no samples" if x.size == 0 else None


def screen_rows(rows: pd.DataFrame, supports_rate: Callable[[int], str | None] | None = None,
                workers: int | None = None) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Decode every noisy and clean file of ``rows`` once and keep the rows that can reach a loss.

    Whatever ``dataset.audio_check`` the manifest was built with (``lists`` and ``header`` never decode),
    a file that does not decode, holds NaN/inf samples, is empty, is not at its row's rate, or is at a rate
    the model cannot run (``supports_rate(sr)`` returns why) is skipped here, before any batch is drawn, so
    the seeded batches are the same on every run. Returns the kept rows (order kept) and one
    ``{utt_id, path, reason}`` per skipped row, in row order. Decoding runs on ``workers`` threads (default:
    one per CPU core, at most 16); the result does not depend on their number.
    """
    dataset = PairDataset(rows, None)

    def check(i: int) -> str | None:
        sr = int(dataset.sr[i])
        why = supports_rate(sr) if supports_rate is not None else None
        if why is not None:
            return f"unsupported_rate: {why}"
        for path in (dataset.noisy[i], dataset.clean[i]):
            if path is not None and (why := _check_file(path, sr, dataset.resample[i], dataset.channels[i])):
                return why
        return None

    with ThreadPoolExecutor(workers or min(16, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(check, range(len(rows))))
    skipped = [{"utt_id": str(rows["utt_id"].iloc[i]), "path": str(rows["path"].iloc[i]), "reason": r}
               for i, r in enumerate(reasons) if r is not None]
    keep = np.array([r is None for r in reasons], dtype=bool)
    return rows[keep].reset_index(drop=True), skipped


def skip_report(skipped: list[dict[str, str]]) -> dict[str, Any]:
    """Counts by reason and the first few skipped rows by name, for a stage's metrics."""
    reasons = Counter(s["reason"].split(":", 1)[0] for s in skipped)
    return {"n": len(skipped), "by_reason": dict(sorted(reasons.items())),
            "examples": [f"{s['utt_id']} ({s['path']}): {s['reason']}" for s in skipped[:MAX_SKIPPED_LISTED]]}
