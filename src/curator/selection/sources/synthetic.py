"""Synthetic source manifests and source scores tables (the source_score schema), for tests and the benchmark.

Speech sources belong to speakers, speakers to corpora (each corpus has its own languages and sampling rates,
with Zipf-like sizes so that caps and quotas bind); embeddings cluster by speaker, with a share of near-copies.
Noise and wind clips carry ``noise_has_speech`` (a share flagged), RIRs only a status. ``pair_scores`` gives a
pair-level table whose ``speech_uid`` points at the speech sources (not every source is used).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from curator.audio import SAMPLE_RATES
from curator.contract.source_scores import NOISE_HAS_SPEECH_COLUMN as NOISE_HAS_SPEECH
from curator.contract.sources import FIELDS
from curator.selection.synthetic import LANGUAGES


@dataclass
class SourceSpec:
    """Knobs of :func:`synthetic_sources`."""

    n_speech: int
    n_noise: int = 20
    n_wind: int = 5
    n_rir: int = 10
    dim: int = 32
    seed: int = 0
    corpora: int = 4
    speakers: int = 0
    """Speakers in all (0: one per 20 speech sources)."""
    duration_sec: tuple[float, float] = (2.0, 12.0)
    duplicate_fraction: float = 0.02
    bad_status_fraction: float = 0.0
    noise_speech_fraction: float = 0.2
    embeddings: bool = True


def synthetic_sources(spec: SourceSpec) -> tuple[pd.DataFrame, pa.Table]:
    """A source manifest (DataFrame in ``read_sources`` form) and its source scores table (Arrow)."""
    rng = np.random.default_rng(spec.seed)
    n = spec.n_speech
    n_spk = spec.speakers or max(1, n // 20)
    corpus_p = 1.0 / np.arange(1, spec.corpora + 1)
    spk_corpus = rng.choice(spec.corpora, size=n_spk, p=corpus_p / corpus_p.sum())
    spk_lang = np.where(rng.random(n_spk) < 0.7, spk_corpus % len(LANGUAGES), rng.integers(0, len(LANGUAGES), n_spk))
    spk_p = rng.pareto(1.5, n_spk) + 1.0
    speaker = rng.choice(n_spk, size=n, p=spk_p / spk_p.sum())
    corpus = spk_corpus[speaker]
    sr = np.asarray(SAMPLE_RATES)[(corpus * 3 + rng.integers(0, 2, n)) % len(SAMPLE_RATES)]
    width = len(str(max(n, 1)))
    ids = np.char.add("sp", np.char.zfill(np.arange(n).astype(str), width)).astype(object)
    duration = rng.uniform(*spec.duration_sec, n)
    bw = np.minimum(sr / 2.0, rng.choice([4000.0, 8000.0, 12000.0, 24000.0], n)) * rng.uniform(0.9, 1.0, n)
    mos = np.clip(3.2 + 0.4 * rng.standard_normal(n), 1.0, 5.0)
    quality = np.clip(0.85 + 0.1 * rng.standard_normal(n), 0.0, 1.0)
    status = np.where(rng.random(n) < spec.bad_status_fraction, "unreadable", "ok").astype(object)
    rows: dict[str, list] = {k: [] for k in FIELDS}

    def add(kind: str, sid: np.ndarray, dur: np.ndarray, rate: np.ndarray, corp: np.ndarray, spk: np.ndarray,
            lang: np.ndarray) -> None:
        rows["source_id"] += sid.tolist()
        rows["kind"] += [kind] * len(sid)
        rows["path"] += [f"sources/{kind}/{s}.flac" for s in sid.tolist()]
        rows["sr"] += rate.astype(int).tolist()
        rows["duration_sec"] += dur.astype(float).tolist()
        rows["split"] += ["train"] * len(sid)
        rows["corpus"] += corp.tolist()
        rows["speaker"] += spk.tolist()
        rows["language"] += lang.tolist()
        rows["text"] += [None] * len(sid)
        rows["custom"] += [{} for _ in range(len(sid))]

    corpus_names = np.asarray([f"corpus{c}" for c in range(spec.corpora)], dtype=object)
    add("speech", ids, duration, sr, corpus_names[corpus], np.char.add("spk", speaker.astype(str)).astype(object),
        np.asarray(LANGUAGES, dtype=object)[spk_lang[speaker]])
    others = []
    for kind, count in (("noise", spec.n_noise), ("wind_noise", spec.n_wind), ("rir", spec.n_rir)):
        sid = np.asarray([f"{kind}{i:05d}" for i in range(count)], dtype=object)
        dur = rng.uniform(1.0, 10.0, count) if kind != "rir" else rng.uniform(0.2, 1.0, count)
        add(kind, sid, dur, np.full(count, 48000), np.full(count, f"{kind}_corpus", dtype=object),
            np.full(count, None, dtype=object), np.full(count, "unknown", dtype=object))
        others.append((kind, sid, dur))
    manifest = pd.DataFrame(rows)[list(FIELDS)]

    speech_cols: dict[str, pa.Array] = {
        "source_id": pa.array(ids, type=pa.string()), "kind": pa.array(np.full(n, "speech", object), pa.string()),
        "status": pa.array(status, pa.string()), "duration_sec": pa.array(duration),
        "sr": pa.array(sr.astype(np.int64)), "corpus": pa.array(corpus_names[corpus], pa.string()),
        "mos_dns": pa.array(mos), "ref_quality": pa.array(quality), "ref_bandwidth_hz": pa.array(bw),
        NOISE_HAS_SPEECH: pa.nulls(n, pa.bool_()),
    }
    if spec.embeddings:
        center = rng.standard_normal((n_spk, spec.dim)).astype(np.float32)
        emb = center[speaker] * np.float32(0.8) + rng.standard_normal((n, spec.dim)).astype(np.float32)
        n_dup = int(spec.duplicate_fraction * n)
        if n_dup:
            copies = rng.choice(n, n_dup, replace=False)
            emb[copies] = emb[rng.integers(0, n, n_dup)] + np.float32(0.01) * rng.standard_normal(
                (n_dup, spec.dim)).astype(np.float32)
        speech_cols["ssl_embed"] = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), spec.dim)
    tables = [pa.table(speech_cols)]
    for kind, sid, dur in others:
        k = len(sid)
        has_speech = (rng.random(k) < spec.noise_speech_fraction) if kind != "rir" else np.zeros(k, bool)
        cols = {c: pa.nulls(k, tables[0].schema.field(c).type) for c in tables[0].column_names}
        cols.update({"source_id": pa.array(sid, pa.string()), "kind": pa.array(np.full(k, kind, object), pa.string()),
                     "status": pa.array(np.full(k, "ok", object), pa.string()), "duration_sec": pa.array(dur),
                     "sr": pa.array(np.full(k, 48000, np.int64)),
                     NOISE_HAS_SPEECH: pa.array(has_speech if kind != "rir" else [None] * k, pa.bool_())})
        tables.append(pa.table(cols, schema=tables[0].schema))
    return manifest, pa.concat_tables(tables)



def pair_scores(manifest: pd.DataFrame, pairs_per_source: float = 2.0, used_fraction: float = 0.9,
                seed: int = 0) -> pa.Table:
    """Pair-level rows (``utt_id, speech_uid, loss_proxy, status``) drawn from ``used_fraction`` of the speech;
    a source's pairs share a base difficulty (so the mean over its pairs ranks sources)."""
    rng = np.random.default_rng(seed)
    speech = manifest.loc[manifest["kind"] == "speech", "source_id"].to_numpy(dtype=object)
    base = rng.random(len(speech))
    used = np.flatnonzero(rng.random(len(speech)) < used_fraction)
    m = max(1, int(pairs_per_source * len(used)))
    idx = used[rng.integers(0, len(used), m)] if len(used) else np.zeros(0, np.int64)
    loss = np.clip(base[idx] * 0.8 + 0.2 * rng.random(len(idx)), 0.0, 1.0)
    ids = np.char.add("pair", np.char.zfill(np.arange(len(idx)).astype(str), 8))
    return pa.table({"utt_id": pa.array(ids, pa.string()), "speech_uid": pa.array(speech[idx], pa.string()),
                     "loss_proxy": pa.array(loss), "status": pa.array(np.full(len(idx), "ok", object), pa.string())})
