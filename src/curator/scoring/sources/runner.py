"""Score source recordings with the pair scorer's runner: each source is a 'pair' whose signals are the source.

Sources are scored in three groups, each one :class:`~curator.scoring.runner.ScoringJob` of its own (its
own shard folder ``<work_dir>/<group>``, so resume, process pools, Ray actors, GPU batching and status rows
are the pair runner's): ``speech`` with the pair scorer's reference scorers (same classes, same options,
same column names), ``noise`` (noise and wind noise) and ``rir`` with the light scorers of
:mod:`.scorers`. A source decodes once; its array is both the batch's ``noisy`` and ``clean`` signal, and the
shard pool resamples it once per rate for every scorer. The groups' tables are joined with the manifest's
labels, sorted by (kind, source_id) and completed with ``ref_quality`` (the pair scorer's composite code
and ``score.ref_quality`` anchors) and ``noise_has_speech``.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curator.audio import FALLBACK_CHANNEL_POLICY, AudioError, NonFiniteAudioError, load_audio, row_decoding
from curator.contract.manifest import resolve_path
from curator.contract.scores import FLOAT_DECIMALS, REF_QUALITY_COLUMN
from curator.contract.source_scores import (
    LABELS,
    NOISE_HAS_SPEECH_COLUMN,
    NOISE_SPEECH_RATIO_COLUMN,
    SCHEMA_VERSION,
)
from curator.contract.sources import KINDS
from curator.scoring.base import SCORERS, Scorer
from curator.scoring.composite import combine
from curator.scoring.decode import (
    DECODE_KEY,
    NAN,
    OK,
    SILENT,
    SR_MISMATCH,
    TOO_SHORT,
    UNREADABLE,
    Decoded,
    DecodeRules,
    rms_dbfs,
)
from curator.scoring.params import RefQualityParams
from curator.scoring.runner import ScoringJob, ShardSummary, plan_shards, run_shards, shard_paths
from curator.scoring.sources.params import SourceScoreParams
from curator.scoring.sources.scorers import SOURCE_SCORERS

GROUPS: dict[str, tuple[str, ...]] = {"speech": ("speech",), "noise": ("noise", "wind_noise"), "rir": ("rir",)}
"""Scoring group -> the source kinds it scores (one scorer list each)."""
SOURCE_STATUSES = (OK, UNREADABLE, NAN, SR_MISMATCH, TOO_SHORT, SILENT)
KEY_SEP = ":"
"""``utt_id`` of a source inside the runner: ``<kind>:<source_id>`` (unique across kinds)."""


@dataclass(frozen=True)
class GroupRun:
    """What the pair runner's workers and executors read from ``job.params``, for one source group."""

    scorers: tuple[str, ...]
    threads_per_worker: int
    decode_workers: int
    batch_size: int
    ray_address: str | None
    mixed_precision: bool
    min_duration_sec: float
    silence_dbfs: float
    max_length_mismatch_sec: float = 0.0


@dataclass
class SourceScoringJob(ScoringJob):
    """A :class:`ScoringJob` over one group of sources: its scorers, options and single-file decoding."""

    group: str = "speech"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def build_scorers(self) -> list[Scorer]:
        p = self.params
        registry = SCORERS if self.group == "speech" else SOURCE_SCORERS
        return [registry.get(name)(self.options.get(name), device=self.device, mixed_precision=p.mixed_precision,
                                   threads=p.threads_per_worker) for name in p.scorers]

    def decode(self, row: dict[str, Any], rules: DecodeRules) -> Decoded:
        return decode_source(row, rules)

    def settings(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "group": self.group,
            "device": self.device,
            "mixed_precision": self.params.mixed_precision,
            "decode": dataclasses.asdict(self.rules()),
            "scorers": {s.name: s.settings() for s in self.build_scorers()},
        }


def decode_source(row: dict[str, Any], rules: DecodeRules) -> Decoded:
    """Load one source recording and check it: unreadable, nan, sr_mismatch, too_short, silent or ok.

    A RIR is silent when its PEAK is below ``silence_dbfs`` (its RMS is low by nature); other kinds by RMS.
    The decoded array is both signals of the returned :class:`Decoded` (one decode, one resampling per rate).
    """
    target, channels = row.get(DECODE_KEY) or (None, FALLBACK_CHANNEL_POLICY)
    try:
        x, sr = load_audio(resolve_path(row["path"]), sr=target, channels=channels)
    except NonFiniteAudioError:
        return Decoded(NAN)
    except AudioError:
        return Decoded(UNREADABLE)
    duration = len(x) / sr
    if sr != int(row["sr"]):
        return Decoded(SR_MISMATCH, duration_sec=duration)
    if len(x) == 0 or len(x) < rules.min_duration_sec * sr:
        return Decoded(TOO_SHORT, duration_sec=duration)
    if row["utt_id"].startswith(f"rir{KEY_SEP}"):
        peak = float(np.max(np.abs(x)))
        level = 20.0 * np.log10(peak) if peak > 0 else float("-inf")
    else:
        level = rms_dbfs(x)
    if level < rules.silence_dbfs:
        return Decoded(SILENT, duration_sec=duration)
    return Decoded(OK, x, x, sr, speech_free=False, duration_sec=duration)


def task_rows(sources: pd.DataFrame) -> list[dict[str, Any]]:
    """The runner's rows of manifest ``sources``: only what the scores depend on (it is fingerprinted)."""
    rows = []
    for r in sources.to_dict("records"):
        row = {"utt_id": f"{r['kind']}{KEY_SEP}{r['source_id']}", "path": r["path"], "sr": int(r["sr"]),
               "duration_sec": float(r["duration_sec"])}
        target, channels = row_decoding(r)
        if target is not None or channels != FALLBACK_CHANNEL_POLICY:
            row[DECODE_KEY] = [target, channels]
        rows.append(row)
    return rows


@dataclass
class GroupResult:
    group: str
    table: pa.Table
    """``utt_id, duration_sec, status`` and the scorer columns, in utt_id order."""
    summaries: list[ShardSummary]
    settings: dict[str, Any]
    workers: int


@dataclass
class SourceScoreResult:
    table: pa.Table
    groups: list[GroupResult]
    settings: dict[str, Any]
    wall_seconds: float

    @property
    def summaries(self) -> list[ShardSummary]:
        return [s for g in self.groups for s in g.summaries]


def group_run(params: SourceScoreParams, group: str) -> GroupRun:
    spec = {"speech": params.speech, "noise": params.noise, "rir": params.rir}[group]
    return GroupRun(tuple(spec.scorers), params.threads_per_worker, params.decode_workers, params.batch_size,
                    params.ray_address, params.mixed_precision, spec.min_duration_sec, params.silence_dbfs)


def score_group(group: str, rows: list[dict[str, Any]], params: SourceScoreParams, options: dict[str, Any],
                work_dir: Path) -> GroupResult:
    """Score one group's rows with the pair runner (shards and markers under ``work_dir``)."""
    job = SourceScoringJob(group_run(params, group), params.resolved_device(), str(work_dir), group, options)  # type: ignore[arg-type]
    settings = job.settings()
    tasks = plan_shards(rows, params.shard_size, settings)
    workers = min(params.workers(), len(tasks))
    summaries = run_shards(job, tasks, params.executor, workers)
    table = pa.concat_tables([pq.read_table(shard_paths(job.work_dir, t)[0]) for t in tasks]).replace_schema_metadata(None)
    keep = ["utt_id", "duration_sec", "status", *[c for c in table.column_names if c in _scorer_columns(job)]]
    return GroupResult(group, table.select(keep), summaries, settings, workers)


def _scorer_columns(job: SourceScoringJob) -> list[str]:
    return [c for s in job.build_scorers() for c in s.outputs]


def score_sources(sources: pd.DataFrame, params: SourceScoreParams, options: dict[str, Any],
                  ref_quality: RefQualityParams, work_dir: str | Path) -> SourceScoreResult:
    """Score every row of a source manifest DataFrame; returns the assembled table (see contract/source_scores).

    ``options``: scorer name -> its parsed ``score.options`` entry. Groups with no scorers configured keep
    their rows (status from decoding alone, no score columns).
    """
    t0 = time.perf_counter()
    groups = []
    work = Path(work_dir)
    for group, kinds in GROUPS.items():
        part = sources[sources["kind"].isin(kinds)]
        if part.empty:
            continue
        groups.append(score_group(group, task_rows(part), params, options, work / group))
    table = assemble(sources, groups, ref_quality, params.noise.max_speech_ratio)
    wall = time.perf_counter() - t0
    if not params.keep_shards:
        shutil.rmtree(work, ignore_errors=True)
    settings = {"schema_version": SCHEMA_VERSION, "groups": {g.group: g.settings for g in groups},
                "ref_quality": dataclasses.asdict(ref_quality),
                "noise_max_speech_ratio": params.noise.max_speech_ratio}
    return SourceScoreResult(table, groups, settings, wall)


def assemble(sources: pd.DataFrame, groups: list[GroupResult], ref_quality: RefQualityParams,
             max_speech_ratio: float) -> pa.Table:
    """One row per source, sorted by (kind in KINDS order, source_id): labels, status, scores, composites."""
    order = {k: i for i, k in enumerate(KINDS)}
    labels = sources.assign(_k=sources["kind"].map(order)).sort_values(["_k", "source_id"], kind="stable")
    keys = [f"{k}{KEY_SEP}{s}" for k, s in zip(labels["kind"], labels["source_id"], strict=True)]
    scored = pa.concat_tables([g.table.select(["utt_id", "duration_sec", "status"]) for g in groups])
    position = {u: i for i, u in enumerate(scored.column("utt_id").to_pylist())}
    take = pa.array([position[k] for k in keys], type=pa.int64())
    n = len(keys)
    arrays: dict[str, pa.Array] = {}
    for name, typ in LABELS.items():
        if name in ("duration_sec", "status"):
            arrays[name] = scored.column(name).take(take).combine_chunks().cast(typ)
        else:
            arrays[name] = pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else v
                                     for v in labels[name].tolist()], type=typ)
    for g in groups:
        index = {u: i for i, u in enumerate(g.table.column("utt_id").to_pylist())}
        rows = np.array([index.get(k, -1) for k in keys], dtype=np.int64)
        mine = rows >= 0
        take_mine = pa.array(np.where(mine, rows, 0), type=pa.int64())
        for name in g.table.column_names[3:]:
            typ = g.table.schema.field(name).type
            picked = g.table.column(name).combine_chunks().take(take_mine)
            if pa.types.is_floating(typ):
                arrays[name] = pa.array(np.where(mine, picked.to_numpy(zero_copy_only=False), np.nan), type=typ)
            else:  # fixed-size lists (embeddings): null on other kinds' rows
                arrays[name] = pc.if_else(pa.array(mine), picked, pa.nulls(n, typ))
        if g.group == "speech":
            columns = {c: arrays[c].to_numpy(zero_copy_only=False) for c in g.table.column_names[3:]
                       if pa.types.is_floating(arrays[c].type)}
            value = np.where(mine, combine(columns, ref_quality.weights, ref_quality.ranges), np.nan)
            arrays[REF_QUALITY_COLUMN] = pa.array(np.round(value, FLOAT_DECIMALS), type=pa.float64())
        if g.group == "noise" and NOISE_SPEECH_RATIO_COLUMN in arrays:
            ratio = arrays[NOISE_SPEECH_RATIO_COLUMN].to_numpy(zero_copy_only=False)
            arrays[NOISE_HAS_SPEECH_COLUMN] = pa.array(ratio > max_speech_ratio, type=pa.bool_(),
                                                       mask=~np.isfinite(ratio))
    assert all(len(a) == n for a in arrays.values())
    return pa.table(arrays)
