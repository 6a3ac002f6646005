"""``python -m curator.datasets.simulation.from_selection``: simulate the training pairs from the selected sources.

Source-level curation (``curation.level: sources``) chooses source recordings; this stage turns the choice into
training pairs with the builtin simulator, exactly as the dataset's own train simulation is drawn (official
probabilities, the ``simulation`` section), drawing ONLY from the selected speech, noise, wind-noise and RIR
sources. It writes, into ``--out`` (``<root>/curated/sources``, built in a fresh sibling folder and swapped in
whole):

- ``audio/{noisy,clean}/<n>/sources_fileid_<k>.<fmt>``: the rendered pairs;
- ``lists/`` (the official layout: wav.scp, spk1.scp, utt2fs, ...) and ``log/meta.tsv`` (every draw; ``log/failed``
  names the rows whose sources could not be used);
- ``train.jsonl``: a pair manifest of the rendered rows (``contract/manifest.py``, imported from the lists and
  meta.tsv as the dataset recipes import theirs; paths relative to the repository root);
- ``curated_train.csv``: every pair, in the pair-level curated-list format (``contract/curated.py``, reason
  ``source_selection``), with its ``curated_train_meta.json`` sidecar, whose ``manifest`` names ``train.jsonl``
  (training reads its rows from there) and whose ``sources`` / ``selection`` name the pool dynamic mixing draws
  from.

``source_simulate.speech_free_fraction`` of the rows are speech-free (noise only), as in the mini dataset. The same
sources, selection and params give the same bytes (seeded draws, sorted ids, any number of workers).

Example::

    python -m curator.datasets.simulation.from_selection --config params.yaml \\
        --sources data/manifests/mini/sources.jsonl \\
        --selection data/curated/source_selection/selected_sources.csv \\
        --out data/curated/sources --metrics metrics/source_simulate.json
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from curator.audio import AudioError
from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.curated import CARRIED, LEADING, VERSION_KEY
from curator.contract.curated import SCHEMA_VERSION as CURATED_SCHEMA_VERSION
from curator.contract.curated import meta_path as curated_meta_path
from curator.contract.flags import FLAGS_COLUMN, row_flags
from curator.contract.manifest import SECONDS_PER_HOUR, ManifestError, Utterance, write_manifest
from curator.contract.source_selection import read_meta as read_selection_meta
from curator.contract.source_selection import read_selection
from curator.contract.sources import KINDS, SourceManifestError, read_sources
from curator.contract.versions import ContractError
from curator.datasets.base import fresh_tmp_dir, swap_dir
from curator.datasets.checks import Rejection
from curator.datasets.kaldi import ListError, SourceEntry, write_kv, write_meta_tsv
from curator.datasets.official import CheckConfig, iter_split
from curator.datasets.paths import to_manifest_path
from curator.datasets.simulation.plan import PlanError, plan_simulation
from curator.datasets.simulation.render import RenderError, render_all, write_lists
from curator.datasets.simulation.sources import Sources
from curator.io import atomic_open, sha256_file, write_json

REASON = "source_selection"
"""``reason`` of every row of the curated list written here."""
ID_PREFIX = "sources_"
"""Prefix of the simulated ids (``sources_fileid_12``): never confused with the dataset's own pair ids."""
AUDIO_DIR = "audio"
MANIFEST_NAME = "train.jsonl"
CURATED_NAME = "curated_train.csv"
FAILED_FILE = "failed"
MAX_NAMED = 20
"""Failed or rejected rows named in the metrics (all are counted, and all failures listed in ``log/failed``)."""
CSV_FLOAT_FORMAT = "%.9g"
POOLS = {"speech": "speech", "noise": "noise", "wind_noise": "wind", "rir": "rir"}
"""Source kind -> the :class:`Sources` pool it fills."""
SLICE = "all"
"""``slice`` of the curated rows: the pairs are not sliced (the selection's quotas acted on the sources)."""


class SelectionError(ValueError):
    """The selected-sources CSV is unreadable or names sources the source manifest lacks."""


# ------------------------------------------------------------------------------------------ the selection


def read_selected_ids(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Kind -> sorted selected source ids of a selected-sources CSV (``contract/source_selection.py``, its sidecar
    version-checked; the source_select stage's list)."""
    try:
        df = read_selection(path)
    except ContractError as exc:
        raise SelectionError(str(exc)) from exc
    kinds, ids = df["kind"].str.strip(), df["source_id"].str.strip()
    for i, (kind, sid) in enumerate(zip(kinds, ids, strict=True)):
        if kind not in KINDS:
            raise SelectionError(f"{path}:{i + 2}: kind {kind!r} is not one of {', '.join(KINDS)}")
        if not sid:
            raise SelectionError(f"{path}:{i + 2}: empty source_id")
    return {k: sorted(sid for kind, sid in zip(kinds, ids, strict=True) if kind == k) for k in KINDS}


# ------------------------------------------------------------------------------------------ the pool


@dataclass
class Pool:
    """The sources a simulation draws from, with the manifest's labels the pairs carry."""

    sources: Sources
    corpus: dict[str, str] = field(default_factory=dict)
    """speech uid -> corpus (where the source manifest names one)."""
    counts: dict[str, int] = field(default_factory=dict)
    """Sources per kind in the pool."""


def load_pool(sources_path: str | os.PathLike[str], selected: dict[str, list[str]] | None) -> Pool:
    """The source manifest's sources (only the ``selected`` ones per kind when given) as simulation pools.

    A selected source the manifest lacks is an error naming it: the selection was made from another manifest.
    Speech lengths come from the files' headers (as :meth:`Sources.from_lists` reads them).
    """
    df = read_sources(sources_path)
    if selected is not None:
        keys = {(k, sid) for k, ids in selected.items() for sid in ids}
        have = set(zip(df["kind"], df["source_id"], strict=True))
        unknown = sorted(keys - have)
        if unknown:
            names = ", ".join(f"{k}:{sid}" for k, sid in unknown[:5])
            more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
            raise SelectionError(f"{len(unknown)} selected source(s) are not in the source manifest '{sources_path}': "
                                 f"{names}{more}. The selection was made from another manifest; re-run the "
                                 "source_select stage on this one (dvc repro source_select)")
        df = df[[(k, sid) in keys for k, sid in zip(df["kind"], df["source_id"], strict=True)]]
    df = df.sort_values(["kind", "source_id"], kind="stable")
    pools: dict[str, dict[str, SourceEntry]] = {p: {} for p in POOLS.values()}
    utt2spk: dict[str, str] = {}
    text: dict[str, str] = {}
    utt2lang: dict[str, str] = {}
    corpus: dict[str, str] = {}
    for r in df.itertuples(index=False):
        pools[POOLS[r.kind]][r.source_id] = SourceEntry(r.source_id, int(r.sr), r.path)
        if r.kind != "speech":
            continue
        if isinstance(r.speaker, str) and r.speaker:
            utt2spk[r.source_id] = r.speaker
        if isinstance(r.text, str) and r.text.strip():
            text[r.source_id] = " ".join(r.text.split())
        if isinstance(r.language, str) and r.language != "unknown":
            utt2lang[r.source_id] = r.language
        if isinstance(r.corpus, str) and r.corpus:
            corpus[r.source_id] = r.corpus
    sources = Sources(root=Path(), speech=pools["speech"], noise=pools["noise"], wind=pools["wind"],
                      rir=pools["rir"], utt2spk=utt2spk, text=text, utt2lang=utt2lang)
    sources.lengths = sources.read_lengths()
    return Pool(sources, corpus, {k: len(pools[p]) for k, p in POOLS.items()})


def n_speech_free(n_speech: int, fraction: float) -> int:
    """Speech-free rows that make ``fraction`` of all rows beside ``n_speech`` speech rows."""
    return int(round(fraction * n_speech / (1.0 - fraction))) if fraction > 0 else 0


# ------------------------------------------------------------------------------------------ the stage


@dataclass
class SimulationResult:
    rows: list[Utterance]
    planned: int
    failed: dict[str, str]
    rejected: list[Rejection]


def simulate(pool: Pool, sim: Any, params: Any, tmp: Path, out: Path, dataset: str) -> SimulationResult:
    """Plan, render and import the pairs into the build folder ``tmp`` (:func:`write_outputs` swaps it in as
    ``out``); returns the manifest rows, their paths where ``out`` will be."""
    sources = pool.sources
    empty = [k for k in ("speech", "noise") if not pool.counts[k]]
    if empty:
        raise SelectionError(f"the selection keeps no {' and no '.join(empty)} source: a simulation needs both "
                             "(check the source_select filters, e.g. source_select noise filters)")
    n_free = n_speech_free(len(sources.speech), params.speech_free_fraction)
    rows = plan_simulation(sources, sim, AUDIO_DIR, salt=params.seed, id_prefix=ID_PREFIX, n_speech_free=n_free)
    failed = render_all(rows, sources, sim, tmp, params.num_workers, desc="simulate from selection")
    write_meta_tsv(tmp / "log" / "meta.tsv", rows)
    if failed:
        write_kv(tmp / "log" / FAILED_FILE, failed)
    ok = [r for r in rows if r["id"] not in failed]
    write_lists(ok, sources.utt2lang, tmp / "lists", None)
    rejected: list[Rejection] = []
    # the lists carry every rate and length: "lists" mode reads no audio (the files were just written here)
    imported = list(iter_split("train", tmp / "lists", tmp / "log" / "meta.tsv", tmp, dataset,
                               CheckConfig("lists", 0.0, 1), rejected))
    tmp_prefix, out_prefix = to_manifest_path(tmp) + "/", to_manifest_path(out) + "/"
    for u in imported:
        u.path = _moved(u.path, tmp_prefix, out_prefix)
        u.clean_path = None if u.clean_path is None else _moved(u.clean_path, tmp_prefix, out_prefix)
        corpus = pool.corpus.get(u.speech_uid or "")
        if corpus:
            u.source = corpus
    return SimulationResult(imported, len(rows), failed, rejected)


def _moved(path: str, tmp_prefix: str, out_prefix: str) -> str:
    """A path under the build folder, rewritten to where the folder is swapped in."""
    return out_prefix + path[len(tmp_prefix):] if path.startswith(tmp_prefix) else path


def curated_frame(rows: Sequence[Utterance]) -> pd.DataFrame:
    """Every simulated pair as a curated list (``contract/curated.py``: the leading columns, then the carried ones
    the manifest has)."""
    recs = []
    for order, u in enumerate(rows, 1):
        d = u.to_dict()
        rec = {"utt_id": u.utt_id, "hours": u.duration_sec / SECONDS_PER_HOUR, "slice": SLICE, "reason": REASON,
               "order": order, "in_quota": False}
        for col in CARRIED:
            if col == FLAGS_COLUMN:
                rec[col] = "+".join(row_flags(u.augmentations, u.distortion, u.noise_id, u.rir_id))
            elif col in d:
                rec[col] = d[col]
        recs.append(rec)
    columns = [*LEADING, *(c for c in CARRIED if c == FLAGS_COLUMN or c in Utterance.__dataclass_fields__)]
    return pd.DataFrame.from_records(recs, columns=columns)


def write_outputs(result: SimulationResult, tmp: Path, out: Path, sidecar: dict[str, Any]) -> None:
    """Manifest, curated list and sidecar into the build folder ``tmp``, then swap it in whole as ``out``."""
    write_manifest(tmp / MANIFEST_NAME, result.rows)
    with atomic_open(tmp / CURATED_NAME, newline="") as f:
        curated_frame(result.rows).to_csv(f, index=False, float_format=CSV_FLOAT_FORMAT, quoting=csv.QUOTE_MINIMAL,
                                          lineterminator="\n")
    write_json(curated_meta_path(tmp / CURATED_NAME), sidecar)
    swap_dir(tmp, out)


def build_metrics(result: SimulationResult, pool: Pool) -> dict[str, Any]:
    """What the stage made: pairs and hours, failures and rejections counted and named, sources used."""
    rows = result.rows
    used = {
        "speech": {u.speech_uid for u in rows if u.speech_uid},
        "noise": {u.noise_id for u in rows if u.noise_id and u.noise_id in pool.sources.noise},
        "wind_noise": {u.noise_id for u in rows if u.noise_id and u.noise_id in pool.sources.wind},
        "rir": {u.rir_id for u in rows if u.rir_id},
    }
    failures = sorted(result.failed.items())
    return {
        "pairs": len(rows),
        "planned": result.planned,
        "speech_pairs": sum(1 for u in rows if u.speech_uid),
        "speech_free_pairs": sum(1 for u in rows if not u.speech_uid),
        "hours": round(sum(u.duration_sec for u in rows) / SECONDS_PER_HOUR, 6),
        "by_distortion": dict(sorted(Counter(u.distortion for u in rows).items())),
        "by_sample_rate": {str(k): v for k, v in sorted(Counter(u.sr for u in rows).items())},
        "failures": {"n": len(failures), "examples": [f"{uid}: {err}" for uid, err in failures[:MAX_NAMED]]},
        "rejected": {"n": len(result.rejected), "by_reason": dict(sorted(Counter(r.reason for r in result.rejected).items())),
                     "examples": [f"{r.utt_id} ({r.path}): {r.reason}" for r in result.rejected[:MAX_NAMED]]},
        "sources_selected": pool.counts,
        "sources_used": {k: len(v) for k, v in used.items()},
        "selected_never_drawn": {k: pool.counts[k] - len(v) for k, v in used.items()},
    }


def write_unavailable(args: argparse.Namespace, out: Path, note: str) -> int:
    """The dataset lists no sources (the selection says so): an empty pair manifest and curated list, so the
    pipeline runs at curation.level: pairs; training on this list stops with the note."""
    tmp = fresh_tmp_dir(out)
    write_outputs(SimulationResult([], 0, {}, []), tmp, out,
                  {VERSION_KEY: CURATED_SCHEMA_VERSION, "manifest": to_manifest_path(out / MANIFEST_NAME),
                   "unavailable": note})
    write_json(args.metrics, {"pairs": 0, "hours": 0.0, "unavailable": note})
    print(f"note: {note}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m curator.datasets.simulation.from_selection", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    ap.add_argument("--sources", required=True, help="source manifest (JSONL, contract/sources.py)")
    ap.add_argument("--selection", required=True, help="selected-sources CSV (the source_select stage's list)")
    ap.add_argument("--out", required=True, help="output folder, e.g. data/curated/sources")
    ap.add_argument("--metrics", default="metrics/source_simulate.json", help="metrics JSON (default: %(default)s)")
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. source_simulate.seed=1")
    return ap


USER_ERRORS = (ConfigError, ContractError, SourceManifestError, SelectionError, ListError, ManifestError,
               AudioError, PlanError, RenderError)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    try:
        cfg = load_params(args.config, args.overrides)
        sim = load_section("simulation", cfg=cfg)
        params = load_section("source_simulate", cfg=cfg)
        data = load_section("data", cfg=cfg)
        if Path(args.selection).is_file() and "unavailable" in read_selection_meta(args.selection):
            return write_unavailable(args, out, read_selection_meta(args.selection)["unavailable"])
        selected = read_selected_ids(args.selection)
        pool = load_pool(args.sources, selected)
        tmp = fresh_tmp_dir(out)
        result = simulate(pool, sim, params, tmp, out, data.dataset)
        if not result.rows:
            raise RenderError(f"none of the {result.planned} simulated rows could be used; first failures: "
                              + "; ".join(f"{k}: {v}" for k, v in sorted(result.failed.items())[:3]))
        sidecar = {
            VERSION_KEY: CURATED_SCHEMA_VERSION,
            "manifest": to_manifest_path(out / MANIFEST_NAME),
            "sources": to_manifest_path(args.sources),
            "sources_sha256": sha256_file(args.sources),
            "selection": to_manifest_path(args.selection),
            "selection_sha256": sha256_file(args.selection),
            "reason": REASON,
            "n_selected": len(result.rows),
            "hours_selected": round(sum(u.duration_sec for u in result.rows) / SECONDS_PER_HOUR, 6),
            "config": {"source_simulate": {"seed": params.seed, "speech_free_fraction": params.speech_free_fraction},
                       "simulation": cfg.get("simulation", {})},  # not num_workers: the bytes do not depend on it
        }
        write_outputs(result, tmp, out, sidecar)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    metrics = build_metrics(result, pool)
    write_json(args.metrics, metrics)
    print(f"source_simulate: {metrics['pairs']} pairs ({metrics['hours']:.3f} h, {metrics['speech_free_pairs']} "
          f"speech-free) from {pool.counts} selected sources -> {out}; {metrics['failures']['n']} failed")
    for example in metrics["failures"]["examples"]:
        print(f"source_simulate: failed {example}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
