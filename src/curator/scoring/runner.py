"""Sharded, resumable scoring: plan (k, n) shards, score the unfinished ones with an executor, assemble.

Rows are sorted by ``utt_id`` and cut into contiguous shards of ``score.shard_size``. A finished shard
leaves ``shard-K-of-N.parquet`` plus a ``.done.json`` marker holding the fingerprint of its rows and of
every setting its numbers depend on, so a killed run recomputes only the unfinished shards and ends with
the same table as an uninterrupted one. How shards run (in-process, a process pool, Ray actors) is the
executor's business; the algorithm does not know how it is scaled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from curator.audio import FALLBACK_CHANNEL_POLICY, row_decoding
from curator.contract.scores import (
    CARRIED,
    FLOAT_DECIMALS,
    LOSS_PROXY_COLUMN,
    REF_QUALITY_COLUMN,
    SCHEMA_VERSION,
    SPEECH_FREE_COLUMN,
    STATUS_COLUMN,
    carried_row,
    write_table,
)
from curator.io import read_json, sha256_file, write_json
from curator.scoring.base import SCORERS, AudioPool, Scorer, ScoringError
from curator.scoring.composite import combine
from curator.scoring.decode import DECODE_KEY, OK, Decoded, DecodeRules, decode_pair
from curator.scoring.params import ScoreParams


@dataclass(frozen=True)
class ShardTask:
    """One unit of work and of resume: rows ``[start, stop)`` of the sorted manifest."""

    index: int
    count: int
    rows: tuple[dict[str, Any], ...]
    fingerprint: str

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"


@dataclass
class ShardSummary:
    """What a finished shard reports (stored in its marker, summed into metrics/score.json)."""

    index: int
    utterances: int
    audio_seconds: float
    statuses: dict[str, int]
    scorer_seconds: dict[str, float]
    decode_seconds: float
    speech_free: int = 0
    resumed: bool = False
    duration_corrected: int = 0
    duration_corrected_seconds: float = 0.0
    duration_corrected_ids: list[str] = dataclasses.field(default_factory=list)


@dataclass
class ScoringJob:
    """Everything a worker needs to build its scorers and write shards (picklable)."""

    params: ScoreParams
    device: str
    work_dir: str

    def build_scorers(self) -> list[Scorer]:
        p = self.params
        return [
            SCORERS.get(name)(p.options[name], device=self.device, mixed_precision=p.mixed_precision,
                              threads=p.threads_per_worker)
            for name in p.scorers
        ]

    def rules(self) -> DecodeRules:
        p = self.params
        return DecodeRules(p.min_duration_sec, p.silence_dbfs, p.max_length_mismatch_sec)

    def decode(self, row: dict[str, Any], rules: DecodeRules) -> Decoded:
        """Decode one task row (a noisy/clean pair here; source scoring decodes one recording)."""
        return decode_pair(row, rules)

    def settings(self) -> dict[str, Any]:
        """Every setting the per-shard numbers depend on (fingerprinted, and stored in the Parquet metadata)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "device": self.device,
            "mixed_precision": self.params.mixed_precision,
            "decode": dataclasses.asdict(self.rules()),
            "scorers": {s.name: s.settings() for s in self.build_scorers()},
        }


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def plan_shards(rows: Sequence[dict[str, Any]], shard_size: int, settings: dict[str, Any]) -> list[ShardTask]:
    """Cut ``rows`` (sorted by utt_id here) into fingerprinted shards of ``shard_size``."""
    ordered = sorted(rows, key=lambda r: r["utt_id"])
    count = max(1, -(-len(ordered) // shard_size))
    settings_digest = _digest(settings)
    tasks = []
    for k in range(count):
        chunk = tuple(ordered[k * shard_size:(k + 1) * shard_size])
        tasks.append(ShardTask(k, count, chunk, _digest([settings_digest, list(chunk)])))
    return tasks


def shard_paths(work_dir: str | Path, task: ShardTask) -> tuple[Path, Path]:
    """(table, completion marker) of a shard."""
    base = Path(work_dir) / task.name
    return base.with_suffix(".parquet"), base.with_suffix(".done.json")


def finished_summary(work_dir: str | Path, task: ShardTask) -> ShardSummary | None:
    """The summary of an already finished shard with the same fingerprint, else None."""
    table, marker = shard_paths(work_dir, task)
    if not (marker.is_file() and table.is_file()):
        return None
    done = read_json(marker)
    if done.get("fingerprint") != task.fingerprint:
        return None
    return dataclasses.replace(ShardSummary(**done["summary"]), resumed=True)


class ShardWorker:
    """Loads every scorer once (per process / actor), then scores shards as pure functions of their rows."""

    def __init__(self, job: ScoringJob) -> None:
        self.job = job
        self.rules = job.rules()
        _limit_torch_threads(job.params.threads_per_worker)
        self.scorers = job.build_scorers()
        for scorer in self.scorers:
            scorer.setup()
        self.columns: dict[str, pa.DataType] = {}
        for scorer in self.scorers:
            if set(scorer.columns()) != set(scorer.outputs):
                raise ScoringError(f"scorer '{scorer.name}' declares {scorer.outputs} but writes {list(scorer.columns())}")
            for col, typ in scorer.columns().items():
                if col in self.columns or col in CARRIED or col == STATUS_COLUMN:
                    raise ScoringError(f"scorer '{scorer.name}' writes column '{col}' that is already taken")
                self.columns[col] = typ

    def __call__(self, task: ShardTask) -> ShardSummary:
        """Score one shard and commit it to the work folder (table first, then its marker)."""
        table, summary = self.score(task)
        commit_shard(self.job.work_dir, task, table, summary)
        return summary

    def score(self, task: ShardTask) -> tuple[pa.Table, ShardSummary]:
        """The shard's table and summary, written nowhere (Ray actors ship them to the driver)."""
        t0 = time.perf_counter()
        with ThreadPoolExecutor(self.job.params.decode_workers) as pool:
            decoded = list(pool.map(lambda r: self.job.decode(r, self.rules), task.rows))
        decode_seconds = time.perf_counter() - t0
        ok = [i for i, d in enumerate(decoded) if d.status == OK]
        values, scorer_seconds = self._score(task, decoded, ok)
        corrected = [i for i, d in enumerate(decoded) if _corrected(task.rows[i], d)]
        summary = ShardSummary(
            index=task.index,
            utterances=len(task.rows),
            audio_seconds=float(sum(len(decoded[i].noisy) / decoded[i].sr for i in ok)),  # type: ignore[arg-type]
            statuses=dict(sorted(Counter(d.status for d in decoded).items())),
            scorer_seconds=scorer_seconds,
            decode_seconds=decode_seconds,
            speech_free=int(sum(d.speech_free for d in decoded)),
            duration_corrected=len(corrected),
            duration_corrected_seconds=float(sum(float(task.rows[i]["duration_sec"]) - decoded[i].duration_sec  # type: ignore[operator]
                                                 for i in corrected)),
            duration_corrected_ids=[str(task.rows[i]["utt_id"]) for i in corrected],
        )
        return self._table(task, decoded, ok, values), summary

    def _score(self, task: ShardTask, decoded: list[Decoded], ok: list[int]
               ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        pool = AudioPool(
            [task.rows[i]["utt_id"] for i in ok],
            np.array([decoded[i].sr for i in ok], dtype=np.int64),
            [decoded[i].noisy for i in ok],  # type: ignore[misc]
            [decoded[i].clean for i in ok],  # type: ignore[misc]
            np.array([decoded[i].speech_free for i in ok], dtype=bool),
        )
        # length bucketing: similar lengths share a batch, so padding (and wasted model time) stays small
        order = np.argsort([len(x) for x in pool.noisy], kind="stable")
        values: dict[str, np.ndarray] = {}
        seconds: dict[str, float] = {}
        for scorer in self.scorers:
            size = scorer.batch_size or self.job.params.batch_size
            t0 = time.perf_counter()
            for start in range(0, len(order), size):
                rows = order[start:start + size]
                for col, arr in scorer.score_batch(pool.batch(rows)).items():
                    if col not in values:
                        values[col] = _empty(self.columns[col], len(pool))
                    values[col][rows] = arr
            seconds[scorer.name] = time.perf_counter() - t0
        return values, seconds

    def _table(self, task: ShardTask, decoded: list[Decoded], ok: list[int],
               values: dict[str, np.ndarray]) -> pa.Table:
        n = len(task.rows)
        ok_idx = np.asarray(ok, dtype=np.int64)
        arrays: dict[str, pa.Array] = {
            name: pa.array([r.get(name) for r in task.rows], type=typ) for name, typ in CARRIED.items()
        }
        # the decoded length wins over the manifest's duration_sec (hours budgets count audio that exists)
        arrays["duration_sec"] = pa.array([r.get("duration_sec") if d.duration_sec is None else d.duration_sec
                                           for r, d in zip(task.rows, decoded, strict=True)], type=pa.float64())
        arrays[STATUS_COLUMN] = pa.array([d.status for d in decoded], type=pa.string())
        arrays[SPEECH_FREE_COLUMN] = pa.array([d.speech_free for d in decoded], type=pa.bool_())
        for col, typ in self.columns.items():
            full = _empty(typ, n)
            if col in values:
                full[ok_idx] = values[col]
            arrays[col] = _to_arrow(full, typ, ok_idx)
        return pa.table(arrays)


DURATION_TOLERANCE_SAMPLES = 2
"""A manifest ``duration_sec`` within this many samples of the decoded length is not counted as corrected
(resampling on decode may round the length by a sample)."""


def _corrected(row: dict[str, Any], d: Decoded) -> bool:
    """True when the row decodes to another length than its manifest ``duration_sec`` says."""
    if d.duration_sec is None or row.get("duration_sec") is None:
        return False
    return abs(float(row["duration_sec"]) - d.duration_sec) * int(row["sr"]) > DURATION_TOLERANCE_SAMPLES


def task_row(row: dict[str, Any]) -> dict[str, Any]:
    """The carried fields of a manifest row, plus how to decode it when its ``custom`` says (resampled or
    multi-channel file); rows without such a record keep the exact dict (and shard fingerprint) they had."""
    out = carried_row(row)
    target, channels = row_decoding(row)
    if target is not None or channels != FALLBACK_CHANNEL_POLICY:
        out[DECODE_KEY] = [target, channels]
    return out


def commit_shard(work_dir: str | Path, task: ShardTask, table: pa.Table, summary: ShardSummary) -> None:
    """Write a finished shard: its table, then the marker that certifies it (so a kill never leaves a lie)."""
    out, marker = shard_paths(work_dir, task)
    write_table(table, out)
    write_json(marker, {"fingerprint": task.fingerprint, "summary": dataclasses.asdict(summary)})


def _empty(typ: pa.DataType, n: int) -> np.ndarray:
    if pa.types.is_fixed_size_list(typ):
        return np.zeros((n, typ.list_size), dtype=typ.value_type.to_pandas_dtype())
    return np.full(n, np.nan, dtype=np.float64)


def _to_arrow(full: np.ndarray, typ: pa.DataType, ok_idx: np.ndarray) -> pa.Array:
    """Scalars stay NaN for rejected rows; fixed-size lists (embeddings) are null there."""
    if not pa.types.is_fixed_size_list(typ):
        return pa.array(np.round(full, FLOAT_DECIMALS) if pa.types.is_floating(typ) else full, type=typ)
    invalid = np.ones(len(full), dtype=bool)
    invalid[ok_idx] = False
    flat = pa.array(full.reshape(-1), type=typ.value_type)
    return pa.FixedSizeListArray.from_arrays(flat, type=typ, mask=pa.array(invalid))


def _limit_torch_threads(threads: int) -> None:
    """Fixed thread counts keep float results identical across executors (and stop oversubscription)."""
    import torch

    torch.set_num_threads(threads)


@dataclass
class ScoreResult:
    table: pa.Table
    summaries: list[ShardSummary]
    settings: dict[str, Any]
    wall_seconds: float
    workers: int
    probe_rows: int | None = None
    """Scored rows the probe file has a row for (None: no probe column is weighted)."""


def run_shards(job: ScoringJob, tasks: list[ShardTask], executor: str, workers: int) -> list[ShardSummary]:
    """Run the unfinished ``tasks`` with the named executor (progress bar with utt/s and times-realtime)."""
    from curator.scoring.executors import EXECUTORS

    Path(job.work_dir).mkdir(parents=True, exist_ok=True)
    summaries: dict[int, ShardSummary] = {}
    pending = []
    for task in tasks:
        done = finished_summary(job.work_dir, task)
        if done is None:
            pending.append(task)
        else:
            summaries[task.index] = done
    total = sum(len(t.rows) for t in tasks)
    if summaries:
        print(f"score: resuming: {len(summaries)} of {len(tasks)} shards ({sum(s.utterances for s in summaries.values())} "
              f"of {total} utterances) were already scored in '{job.work_dir}' with these settings; scoring the "
              f"other {len(pending)}", file=sys.stderr, flush=True)
    bar = tqdm(total=total, unit="utt", desc="score", initial=sum(s.utterances for s in summaries.values()))
    start = time.perf_counter()
    audio = 0.0

    def on_done(summary: ShardSummary) -> None:
        nonlocal audio
        summaries[summary.index] = summary
        audio += summary.audio_seconds
        bar.update(summary.utterances)
        bar.set_postfix(xRT=f"{audio / max(time.perf_counter() - start, 1e-9):.1f}")

    run: Callable[..., None] = EXECUTORS.get(executor)
    try:
        if pending:
            run(job, pending, on_done, workers)
    finally:
        bar.close()
    return [summaries[t.index] for t in tasks]


def assemble(job: ScoringJob, tasks: list[ShardTask], probe_loss: pa.Table | None = None) -> pa.Table:
    """Concatenate finished shards in order; add ``ref_quality``, ``loss_proxy`` (and the probe columns given)."""
    table = pa.concat_tables([pq.read_table(shard_paths(job.work_dir, t)[0]) for t in tasks])
    table = table.replace_schema_metadata(None)
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names
               if pa.types.is_floating(table.schema.field(name).type)}
    if probe_loss is not None:
        for col in probe_loss.column_names[1:]:
            probe = _align(table.column("utt_id").to_pylist(), probe_loss, col)
            table = table.append_column(col, pa.array(probe, type=pa.float64()))
            columns[col] = probe
    speech_free = table.column(SPEECH_FREE_COLUMN).to_numpy(zero_copy_only=False).astype(bool)
    ok = (table.column(STATUS_COLUMN).to_numpy(zero_copy_only=False) == OK)
    for name, spec in ((REF_QUALITY_COLUMN, job.params.ref_quality), (LOSS_PROXY_COLUMN, job.params.loss_proxy)):
        value = combine(columns, spec.weights, spec.ranges)
        if name == LOSS_PROXY_COLUMN:
            # intrusive proxies are undefined on a silent target; the row's hardness is a documented constant
            value = np.where(speech_free & ok, job.params.loss_proxy.speech_free_hardness, value)
        table = table.append_column(name, pa.array(np.round(value, FLOAT_DECIMALS), type=pa.float64()))
    return table


def _align(utt_ids: list[str], probe: pa.Table, column: str) -> np.ndarray:
    """Probe column ``column`` in ``utt_ids`` order (NaN where the probe did not score an utterance)."""
    at = pc.index_in(pa.array(utt_ids, type=pa.string()), probe.column("utt_id").cast(pa.string()))
    values = probe.column(column).cast(pa.float64()).to_numpy()
    found = at.is_valid().to_numpy(zero_copy_only=False)
    out = np.full(len(utt_ids), np.nan, dtype=np.float64)
    out[found] = values[at.drop_null().to_numpy()]
    return out


def score_rows(rows: Sequence[dict[str, Any]], params: ScoreParams, work_dir: str | Path,
               extra_settings: dict[str, Any] | None = None) -> ScoreResult:
    """Score manifest ``rows`` (dicts with the carried fields) and return the assembled table.

    Shards and markers live in ``work_dir``; they are removed after assembly unless ``score.keep_shards``.
    """
    if not rows:
        raise ScoringError("nothing to score: the manifest has no rows after data.filters")
    probe_cols = params.loss_proxy.probe_columns
    probe_path = params.loss_proxy.probe_path if probe_cols else None
    if probe_cols and not probe_path:
        raise ScoringError(f"score.loss_proxy.weights.{probe_cols[0]} > 0 needs the probe stage's output: "
                           "resolve score.loss_proxy.probe_path first (LossProxyParams.with_probe_path)")
    if probe_path and not Path(probe_path).is_file():
        raise ScoringError(f"score.loss_proxy.probe_path '{probe_path}' does not exist: run the probe stage "
                           f"(python -m curator.scoring.probe) or set score.loss_proxy.weights.{probe_cols[0]} to 0")
    probe: pa.Table | None = None
    if probe_path:
        absent = [c for c in probe_cols if c not in pq.read_schema(probe_path).names]
        if absent:
            raise ScoringError(f"score.loss_proxy.weights.{absent[0]} > 0 but the probe stage's output "
                               f"'{probe_path}' has no '{absent[0]}' column: rerun the probe stage with "
                               "probe.ranking=reducible_loss, or weight probe_holdout_loss instead")
        probe = pq.read_table(probe_path, columns=["utt_id", *probe_cols])  # read once: checked here, joined below
        ids = pa.array(sorted({str(r["utt_id"]) for r in rows}), type=pa.string())
        probed = int(pc.sum(pc.is_in(probe.column("utt_id").cast(pa.string()), value_set=ids)).as_py() or 0)
        if probed == 0:
            raise ScoringError(f"the probe stage's output '{probe_path}' (score.loss_proxy.probe_path) has no row of "
                               f"this manifest's {len(ids)}: it was made from another manifest or dataset; rerun the "
                               "probe stage on this one (python -m curator.scoring.probe, its --out as probe_path)")
    job = ScoringJob(params, params.resolved_device(), str(work_dir))
    settings = job.settings()
    tasks = plan_shards([task_row(r) for r in rows], params.shard_size, settings)
    workers = min(params.workers(), len(tasks))
    t0 = time.perf_counter()
    summaries = run_shards(job, tasks, params.executor, workers)
    table = assemble(job, tasks, probe)
    wall = time.perf_counter() - t0
    if not params.keep_shards:
        shutil.rmtree(work_dir, ignore_errors=True)
    full_settings = {**settings, "loss_proxy": dataclasses.asdict(params.loss_proxy),
                     "ref_quality": dataclasses.asdict(params.ref_quality), **(extra_settings or {})}
    if probe_path:
        full_settings["probe_sha256"] = sha256_file(probe_path)
    return ScoreResult(table, summaries, full_settings, wall, workers, probed if probe_path else None)
