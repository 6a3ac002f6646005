"""The candidate pool: the scores table read, validated, filtered and turned into flat numpy arrays.

Noise-only examples (``speech_free``) have no reference to rate: a missing quality score is expected there,
and the quality gate and MOS threshold let them through. Rows are put in ``utt_id`` order first, so every later tie-break, seeded draw and output is independent of
the order of rows in the Parquet file. Bad rows are either an error naming the file and what to do
(missing columns, duplicate ids, an empty pool, too many invalid rows) or a counted skip reported in
``metrics/select.json`` (non-ok ``status``, non-finite values, unusable embeddings).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.contract.curated import CARRIED as OUTPUT_COLUMNS
from curator.contract.data import Filters
from curator.contract.filters import SECONDS_PER_HOUR, arrow_columns, filter_mask
from curator.contract.flags import FLAGS_COLUMN, FlagMatrix, flags_from_arrow, join_flags
from curator.contract.scores import (
    EMBED_COLUMN,
    MOS_COLUMN,
    REQUIRED,
    SPEECH_FREE_COLUMN,
    STATUS_COLUMN,
    STATUS_OK,
    read_schema,
    read_scores,
)
from curator.contract.versions import ContractError
from curator.selection import workers

SLICE_SEPARATOR = "/"
FLAG_SLICE_PREFIX = f"{FLAGS_COLUMN}."
"""Slice-key name of a per-augmentation flag dimension (``augmentations.reverb``), added for each flag quota;
its values are ``+reverb`` (has the flag) and ``-reverb``."""
MISSING_LABEL = "unknown"
MIN_NORM = 1e-12
"""Embeddings with a smaller norm (before or after centring) have no direction and are skipped: an all-zero
vector is a failed embedder, and centring would otherwise turn it into minus the mean, a valid-looking one."""
MAX_DURATION_SEC = 86_400.0
"""Longest plausible utterance (a day): a longer ``duration_sec`` is a corrupt value, skipped and counted like
a NaN, instead of a row whose hours would stop the budgeted greedy at a fraction of K."""
EMBED_BATCH_ROWS = 65_536
"""Rows per Arrow batch while copying embeddings: bounds the Arrow copy held next to the matrix."""
MAX_GROUP_ROWS = 262_144
"""Row groups up to this size are decoded whole (fastest); larger ones in EMBED_BATCH_ROWS slices."""


class PoolError(ValueError):
    """The scores table cannot be used; the message names the file and what to do."""


@dataclass
class Pool:
    """Flat arrays over the candidate rows, in ``utt_id`` order (row ``i`` everywhere is one utterance)."""

    utt_id: np.ndarray
    hours: np.ndarray
    loss: np.ndarray
    mos: np.ndarray | None
    quality: dict[str, np.ndarray]
    speech_free: np.ndarray
    slice_code: np.ndarray
    slice_names: list[str]
    slice_values: list[tuple[str, ...]]
    slice_key: list[str]
    emb: np.ndarray
    columns: pa.Table
    source: str = ""
    excluded: dict[str, int] = field(default_factory=dict)
    flags: FlagMatrix | None = None
    """Per-augmentation flags of the rows (None when the scores table predates them)."""

    @property
    def n(self) -> int:
        return int(self.hours.shape[0])

    @property
    def n_slices(self) -> int:
        return len(self.slice_names)

    def slice_hours(self, mask: np.ndarray | None = None) -> np.ndarray:
        """Hours per slice over ``mask`` (all rows when None)."""
        w = self.hours if mask is None else np.where(mask, self.hours, 0.0)
        return np.bincount(self.slice_code, weights=w, minlength=self.n_slices)


ScoresSource = str | os.PathLike | pa.Table | pd.DataFrame


def load_pool(source: ScoresSource, slice_key: Sequence[str], filters: Filters | None = None,
              quality_columns: Sequence[str] = (), center: bool = True, max_invalid_fraction: float = 0.01,
              seed: int = 0, flag_slices: Sequence[str] = ()) -> Pool:
    """Read a scores table (Parquet path, Arrow table or DataFrame) into a :class:`Pool`.

    ``flag_slices``: per-augmentation flags that each add a ``+flag`` / ``-flag`` dimension to the slices
    (those with a quota); a flag no kept row has is an error listing the flags the pool has. See the module
    docstring for the other bad-input rules.
    """
    if isinstance(source, pd.DataFrame):
        source = pa.Table.from_pandas(source, preserve_index=False)
    if isinstance(source, pa.Table):
        path, schema = "<table>", source.schema
    else:
        path = str(source)
        if not os.path.isfile(path):
            raise PoolError(f"scores file '{path}' does not exist; run the score stage first (dvc repro score)")
        try:
            schema = read_schema(path)
        except ContractError as exc:
            raise PoolError(str(exc)) from exc
    required = list(dict.fromkeys([*REQUIRED, *slice_key, *quality_columns]))
    missing = [c for c in required if c not in schema.names]
    if missing:
        gate = [c for c in missing if c in quality_columns]
        raise PoolError(
            f"scores file '{path}' lacks column(s) {', '.join(missing)} (has: {', '.join(schema.names)}); "
            + (f"{', '.join(gate)} is read by the quality gate / mos_threshold: enable its scorer, pick another "
               "select.*.column, or switch them off; " if gate else "")
            + "re-run the score stage"
        )
    if flag_slices and FLAGS_COLUMN not in schema.names:
        raise PoolError(f"scores file '{path}' lacks the '{FLAGS_COLUMN}' column that select.quotas.{FLAGS_COLUMN} "
                        "reads (scored before per-augmentation flags existed); re-run the score stage")
    scalar_cols = [c for c in dict.fromkeys([*required, *OUTPUT_COLUMNS, STATUS_COLUMN, SPEECH_FREE_COLUMN])
                   if c in schema.names and c != EMBED_COLUMN]
    table = source.select(scalar_cols) if isinstance(source, pa.Table) else read_scores(path, columns=scalar_cols)
    if table.num_rows == 0:
        raise PoolError(f"scores file '{path}' has no rows; check the score stage's metrics/score.json")
    order = pc.sort_indices(table, sort_keys=[("utt_id", "ascending")]).to_numpy()
    if (np.diff(order) != 1).any():  # a table already in utt_id order (the score stage writes one) is kept as is
        table = table.take(order)
    _check_ids(table["utt_id"], path)

    excluded: dict[str, int] = {}
    keep = _valid_rows(table, quality_columns, excluded, path, max_invalid_fraction)
    if filters is not None:
        where = f"scores file '{path}'"
        keep, dropped = filter_mask(arrow_columns(table, filters, where), filters, seed, keep, where=where)
        excluded.update({f"filtered_{k}": v for k, v in dropped.items()})
    if not keep.any():
        raise PoolError(
            f"no usable rows left in '{path}' after validation and data.filters ({_describe(excluded)}); "
            "widen data.filters or check the score stage"
        )
    rows = np.flatnonzero(keep)
    batches = (source.select([EMBED_COLUMN]).to_batches(EMBED_BATCH_ROWS) if isinstance(source, pa.Table)
               else _row_groups(path) or _parquet_batches(path))
    emb, ok, raw_ok = _read_embeddings(batches, path, order, rows, center)
    pa.default_memory_pool().release_unused()  # Arrow's allocator would otherwise keep the batches' pages
    if not ok.all():
        if not raw_ok.all():
            excluded["invalid_embedding"] = int((~raw_ok).sum())
            _check_invalid_share(excluded["invalid_embedding"], len(rows), "ssl_embed", path, max_invalid_fraction,
                                 "a missing, non-finite or all-zero")
        at_mean = int((raw_ok & ~ok).sum())
        if at_mean:
            excluded["embedding_at_pool_mean"] = at_mean
            if at_mean / len(rows) > max_invalid_fraction:
                raise PoolError(
                    f"scores file '{path}': {at_mean} of {len(rows)} usable rows have an embedding equal to the "
                    "pool's mean embedding, so centring (select.diversity.center = true) leaves them no direction: "
                    "their embeddings are all the same (copies of one utterance, or an embedder returning a "
                    "constant); set select.diversity.center=false, or check the embedding scorer")
        rows, emb = rows[ok], emb[ok]
    kept = table if len(rows) == table.num_rows else table.take(pa.array(rows))
    flags = flags_from_arrow(kept[FLAGS_COLUMN]) if FLAGS_COLUMN in kept.column_names else None
    codes, names, values = _slices(kept, slice_key, flags, flag_slices, path)
    output = [c for c in OUTPUT_COLUMNS if c in kept.column_names]
    columns = kept.select(output)
    if FLAGS_COLUMN in output:
        columns = columns.set_column(output.index(FLAGS_COLUMN), FLAGS_COLUMN, join_flags(kept[FLAGS_COLUMN]))
    return Pool(
        utt_id=kept["utt_id"].to_numpy(zero_copy_only=False),
        hours=kept["duration_sec"].to_numpy(zero_copy_only=False).astype(np.float64) / SECONDS_PER_HOUR,
        loss=kept["loss_proxy"].to_numpy(zero_copy_only=False).astype(np.float64),
        mos=(kept[MOS_COLUMN].to_numpy(zero_copy_only=False).astype(np.float64)
             if MOS_COLUMN in kept.column_names else None),
        quality={c: kept[c].to_numpy(zero_copy_only=False).astype(np.float64) for c in quality_columns},
        speech_free=_speech_free(kept),
        slice_code=codes, slice_names=names, slice_values=values,
        slice_key=[*slice_key, *(FLAG_SLICE_PREFIX + f for f in flag_slices)], emb=emb,
        columns=columns, source=path, excluded=excluded, flags=flags,
    )


def _check_ids(ids: pa.ChunkedArray, path: str) -> None:
    if ids.null_count:
        raise PoolError(f"scores file '{path}' has {ids.null_count} row(s) with a null utt_id; fix the score stage")
    arr = ids.combine_chunks()
    if len(arr) > 1:
        same = pc.equal(arr.slice(1), arr.slice(0, len(arr) - 1)).to_numpy(zero_copy_only=False)
        if same.any():
            dups = sorted(set(arr.take(pa.array(np.flatnonzero(same)[:5] + 1)).to_pylist()))
            raise PoolError(
                f"scores file '{path}' has {int(same.sum())} duplicate utt_id(s), e.g. {dups}; "
                "each utterance must be scored once (check the manifest and the score stage's shards)"
            )


def _numeric(table: pa.Table, col: str) -> np.ndarray:
    return table[col].to_numpy(zero_copy_only=False).astype(np.float64)


def _valid_rows(table: pa.Table, quality_columns: Sequence[str], excluded: dict[str, int], path: str,
                max_invalid_fraction: float) -> np.ndarray:
    keep = np.ones(table.num_rows, dtype=bool)
    if STATUS_COLUMN in table.column_names:
        status = table[STATUS_COLUMN].fill_null("missing")
        ok = pc.equal(status, STATUS_OK).to_numpy(zero_copy_only=False)
        if not ok.all():
            excluded["status_not_ok"] = int((~ok).sum())
        keep &= ok
    n_ok = int(keep.sum())
    checks = {"duration_sec": lambda x: np.isfinite(x) & (x > 0) & (x <= MAX_DURATION_SEC), "loss_proxy": np.isfinite}
    speech_free = _speech_free(table)
    for col in quality_columns:
        checks[col] = lambda x: np.isfinite(x) | speech_free
    for col, is_valid in checks.items():
        good = is_valid(_numeric(table, col))
        bad = int((keep & ~good).sum())
        if bad:
            excluded[f"invalid_{col}"] = bad
            _check_invalid_share(bad, n_ok, col, path, max_invalid_fraction)
        keep &= good
    return keep


def _speech_free(table: pa.Table) -> np.ndarray:
    if SPEECH_FREE_COLUMN not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return table[SPEECH_FREE_COLUMN].fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def _check_invalid_share(bad: int, total: int, col: str, path: str, max_invalid_fraction: float,
                         what: str = "a missing, NaN or infinite") -> None:
    if total and bad / total > max_invalid_fraction:
        raise PoolError(
            f"scores file '{path}': {bad} of {total} status-ok rows have {what} '{col}' "
            f"(more than select.max_invalid_fraction = {max_invalid_fraction}); the score stage is broken for "
            "them: fix it, or raise select.max_invalid_fraction to skip them"
        )


def _read_embeddings(batches: Iterable[pa.RecordBatch] | RowGroups, path: str, order: np.ndarray, rows: np.ndarray,
                     center: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Copy the kept rows' embeddings into a (rows, D) float32 matrix, batch by batch; centre and L2-normalise.

    ``batches``: record batches in file order, or (a Parquet file) one reader per row group, which run on the
    selection's threads (``workers.py``) and write disjoint rows. ``order`` maps sorted positions to file rows.
    Returns the matrix, a mask of rows whose embedding is usable after centring, and a mask of rows whose
    embedding was usable as read (finite, non-zero); rows of different dimensions are an error. A pool with one
    usable embedding is not centred (it is its own mean: centring would erase it). Every step is row-wise or one
    fixed sum, so the bytes do not depend on the thread count.
    """
    target = np.full(len(order), -1, dtype=np.int64)
    target[order[rows]] = np.arange(len(rows))
    ok = np.ones(len(rows), dtype=bool)
    holder: list[np.ndarray] = []

    def place(col: pa.Array, start: int) -> int:
        """Write the kept rows of one batch (file rows from ``start``); the first such batch sizes the matrix."""
        dest = target[start:start + len(col)]
        sel = dest >= 0
        if not sel.any():
            return 0
        values, good = _embedding_batch(col, path)
        if not holder:
            # every kept row is written exactly once (``target`` maps each to one file row), so the matrix needs
            # no zeroing: np.empty takes numpy's huge-page allocation, np.zeros a calloc whose 4 KiB page faults
            # cost about 2 s per GB on first write
            holder.append(np.empty((len(rows), values.shape[1]), dtype=np.float32))
        emb = holder[0]
        if values.shape[1] != emb.shape[1]:
            raise PoolError(f"scores file '{path}': ssl_embed has rows of dimension {values.shape[1]} and "
                            f"{emb.shape[1]}; all embeddings must come from one embedder")
        if sel.all() and dest[-1] - dest[0] == len(dest) - 1 and (len(dest) == 1 or dest[1] > dest[0]):
            emb[dest[0]:dest[-1] + 1] = values
        else:
            emb[dest[sel]] = values[sel]
        ok[dest[sel & ~good]] = False
        return int(sel.sum())

    written = start = 0
    if isinstance(batches, RowGroups):
        # one reader per row group: in file order until one sizes the matrix, the rest on the threads
        groups = batches
        starts = np.cumsum([0, *groups.sizes]).tolist()
        k = 0
        while k < len(groups.sizes) and not holder:
            written += place(groups.read(k), starts[k])
            k += 1
        written += sum(workers.blocks(lambda g: place(groups.read(g), starts[g]), range(k, len(groups.sizes))))
        start = starts[-1]
    else:
        for batch in batches:
            written += place(batch.column(0), start)
            start += len(batch)
    if not holder or written != len(rows):
        raise PoolError(f"scores file '{path}': the ssl_embed column has {start} rows, the other columns "
                        f"{len(order)}; the file is corrupt: re-run the score stage")
    emb = holder[0]
    spans = workers.spans(len(emb), EMBED_BATCH_ROWS)

    def nonzero(span: tuple[int, int]) -> None:
        block = emb[span[0]:span[1]]
        ok[span[0]:span[1]] &= np.einsum("ij,ij->i", block, block) > MIN_NORM ** 2

    workers.blocks(nonzero, spans)
    emb[~ok] = 0.0
    raw_ok = ok.copy()
    mean = emb.sum(axis=0, dtype=np.float64) / int(ok.sum()) if center and int(ok.sum()) >= 2 else None

    def normalise(span: tuple[int, int]) -> None:
        lo, hi = span
        block = emb[lo:hi]
        if mean is not None:
            block -= mean.astype(np.float32)
        norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        good = ok[lo:hi] & (norms > MIN_NORM)
        ok[lo:hi] = good
        block *= np.where(good, 1.0 / np.maximum(norms, MIN_NORM), 0.0).astype(np.float32)[:, None]

    workers.blocks(normalise, spans)
    return emb, ok, raw_ok


@dataclass
class RowGroups:
    """The embedding column of a Parquet file, one reader call per row group (any order, any thread)."""

    path: str
    sizes: list[int]

    def read(self, group: int) -> pa.Array:
        table = pq.ParquetFile(self.path).read_row_group(group, columns=[EMBED_COLUMN], use_threads=False)
        return table.column(0).combine_chunks()


def _row_groups(path: str) -> RowGroups | None:
    """The file's row groups, or None when one is too large to read whole (then read in slices, in order)."""
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    return None if any(n > MAX_GROUP_ROWS for n in sizes) else RowGroups(path, sizes)


def _parquet_batches(path: str) -> Iterator[pa.RecordBatch]:
    """The embedding column, one row group at a time (sliced when a row group is very large)."""
    pf = pq.ParquetFile(path)
    for group in range(pf.metadata.num_row_groups):
        if pf.metadata.row_group(group).num_rows > MAX_GROUP_ROWS:
            yield from pf.iter_batches(batch_size=EMBED_BATCH_ROWS, row_groups=[group], columns=[EMBED_COLUMN])
        else:
            yield from pf.read_row_group(group, columns=[EMBED_COLUMN]).to_batches()


def _embedding_batch(col: pa.Array, path: str) -> tuple[np.ndarray, np.ndarray]:
    """(rows, D) float32 view of a list / fixed-size-list column and a mask of usable rows."""
    if not (pa.types.is_fixed_size_list(col.type) or pa.types.is_list(col.type)
            or pa.types.is_large_list(col.type)):
        raise PoolError(f"scores file '{path}': ssl_embed must be a list of floats, got {col.type}")
    null = col.is_null().to_numpy(zero_copy_only=False)
    if pa.types.is_fixed_size_list(col.type):
        dim = col.type.list_size
        flat = col.flatten() if not col.null_count else pc.list_flatten(col.fill_null([0.0] * dim))
    else:
        lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False)
        dims = np.unique(lengths[~null])
        if len(dims) > 1:
            raise PoolError(f"scores file '{path}': ssl_embed rows have different lengths {dims[:5].tolist()}; "
                            "all embeddings must come from one embedder")
        dim = int(dims[0]) if len(dims) else 0
        flat = pc.list_flatten(col.fill_null(pa.scalar([0.0] * dim, type=col.type)))
    values = flat.to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(len(col), dim)
    good = ~null & np.isfinite(values).all(axis=1)
    return values, good


def _slices(table: pa.Table, slice_key: Sequence[str], flags: FlagMatrix | None = None,
            flag_slices: Sequence[str] = (), path: str = "<table>"
            ) -> tuple[np.ndarray, list[str], list[tuple[str, ...]]]:
    """Integer slice codes (sorted slice names) for the combination of the ``slice_key`` columns and of the
    ``flag_slices`` flags (``+flag`` / ``-flag``)."""
    per_col = []
    for col in slice_key:
        labels = pc.cast(table[col], pa.string()).fill_null(MISSING_LABEL).combine_chunks()
        enc = labels.dictionary_encode()
        dictionary = np.asarray(enc.dictionary.to_pylist(), dtype=object)
        per_col.append((dictionary, enc.indices.to_numpy(zero_copy_only=False)))
    for flag in flag_slices:
        assert flags is not None
        if flag not in flags.names:
            close = difflib.get_close_matches(flag, flags.names, n=1, cutoff=0.5)
            raise PoolError(
                f"select.quotas.{FLAGS_COLUMN} names '{flag}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                + f", which no row of '{path}' left after data.filters has; valid choices: "
                + (", ".join(flags.names) or "none")
            )
        per_col.append((np.asarray([f"-{flag}", f"+{flag}"], dtype=object), flags.has(flag).astype(np.int64)))
    dims = [len(d) for d, _ in per_col]
    combined = np.ravel_multi_index(tuple(idx for _, idx in per_col), dims) if per_col else np.zeros(0, np.int64)
    present, codes = np.unique(combined, return_inverse=True)
    values = [tuple(str(d[i]) for (d, _), i in zip(per_col, np.unravel_index(p, dims), strict=True))
              for p in present]
    names = [SLICE_SEPARATOR.join(v) for v in values]
    by_name = np.argsort(np.asarray(names, dtype=object), kind="stable")
    remap = np.empty_like(by_name)
    remap[by_name] = np.arange(len(by_name))
    return (remap[codes].astype(np.int32), [names[i] for i in by_name], [values[i] for i in by_name])


def _describe(excluded: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(excluded.items())) or "no rows were excluded"
