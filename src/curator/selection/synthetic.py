"""Synthetic scores tables with the scoring stage's schema, for the selection tests and benchmark.

Embeddings have the structure that makes selection non-trivial: utterances cluster by source (speaker or
recording), each distortion shifts them, and a share of rows are near-copies of another row (the same
speech simulated twice), at cosine well above the usual near-duplicate threshold. Loss and reference MOS
depend on the distortion; a ground-truth ``imperfect`` flag marks references that are worse than their MOS
alone says, as the mini dataset's planted defects do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from curator.audio import SAMPLE_RATES
from curator.contract.flags import FLAGS_COLUMN
from curator.contract.scores import write_table

DISTORTIONS = ("noise", "reverb", "wind", "bandwidth_limitation", "clipping", "codec", "packet_loss")
LANGUAGES = ("en", "de", "es", "fr", "zh")
LATENT_RESIDUAL = 0.05
"""Norm of the isotropic noise added to low-intrinsic-dimension embeddings (``SyntheticSpec.latent_dim``)."""


@dataclass
class SyntheticSpec:
    """Knobs of :func:`synthetic_scores` (defaults: the issue's benchmark table, per row)."""

    n: int
    dim: int = 256
    seed: int = 0
    duration_sec: tuple[float, float] = (2.0, 16.0)
    rows_per_source: int = 500
    source_weight: float = 0.8
    distortion_weight: float = 0.5
    noise_weight: float = 1.0
    duplicate_fraction: float = 0.02
    duplicate_noise: float = 0.25
    imperfect_fraction: float = 0.2
    bad_status_fraction: float = 0.0
    reverb_fraction: float = 0.5
    """Share of the rows labelled with another distortion that are also reverberated (their ``augmentations``
    flags then hold ``reverb`` beside their label, as in the official simulation)."""
    latent_dim: int = 0
    """0: noise, source and distortion directions are isotropic in all ``dim`` dimensions (high intrinsic
    dimension, the hardest case for exact near-duplicate search); k > 0: they all lie in one random
    k-dimensional subspace, plus a little isotropic noise (``LATENT_RESIDUAL``): dense embeddings near a
    low-dimensional subspace, like pooled SSL features whose nearest neighbours sit at cosine ~0.9."""


def synthetic_scores(spec: SyntheticSpec) -> tuple[pa.Table, pd.DataFrame]:
    """A scores table (Arrow, the scoring schema) and its ground truth ``utt_id, imperfect, defect``."""
    rng = np.random.default_rng(spec.seed)
    n, d = spec.n, spec.dim
    dist = rng.integers(0, len(DISTORTIONS), n)
    lang = rng.integers(0, len(LANGUAGES), n)
    n_sources = max(1, n // spec.rows_per_source)
    source = rng.integers(0, n_sources, n)
    k = spec.latent_dim or d
    basis = _unit(rng.standard_normal((k, d), dtype=np.float32)) if spec.latent_dim else None

    def lift(z: np.ndarray) -> np.ndarray:
        return z if basis is None else z @ basis

    emb = lift(rng.standard_normal((n, k), dtype=np.float32))
    emb *= np.float32(spec.noise_weight / np.sqrt(k))
    if spec.latent_dim:
        emb += rng.standard_normal((n, d), dtype=np.float32) * np.float32(LATENT_RESIDUAL / np.sqrt(d))
    emb += spec.source_weight * _unit(lift(rng.standard_normal((n_sources, k), dtype=np.float32)))[source]
    emb += spec.distortion_weight * _unit(lift(rng.standard_normal((len(DISTORTIONS), k), dtype=np.float32)))[dist]
    n_dup = int(spec.duplicate_fraction * n)
    copies = rng.choice(n, size=n_dup, replace=False)
    originals = rng.integers(0, n, n_dup)
    jitter = rng.standard_normal((n_dup, d), dtype=np.float32) * np.float32(spec.duplicate_noise / np.sqrt(d))
    emb[copies] = _unit(emb[originals]) + jitter
    hardness = np.linspace(0.2, 0.7, len(DISTORTIONS))[dist]
    loss = np.clip(hardness + 0.15 * rng.standard_normal(n), 0.0, 1.0)
    imperfect = rng.random(n) < spec.imperfect_fraction
    mos = np.clip(3.4 - 0.8 * imperfect + 0.35 * rng.standard_normal(n), 1.0, 5.0)
    status = np.where(rng.random(n) < spec.bad_status_fraction, "decode_error", "ok")
    ids = np.char.add("utt", np.char.zfill(np.arange(n).astype(str), len(str(n))))
    sr = np.asarray(SAMPLE_RATES)[rng.integers(0, len(SAMPLE_RATES), n)]
    duration = rng.uniform(*spec.duration_sec, n)
    ref_quality = np.clip(0.92 - 0.3 * imperfect + 0.08 * rng.standard_normal(n), 0.0, 1.0)
    columns = {
        "utt_id": ids, "path": np.char.add(np.char.add("noisy/", ids), ".flac"),
        "clean_path": np.char.add(np.char.add("clean/", ids), ".flac"),
        "duration_sec": duration, "sr": sr.astype(np.int64),
        "language": np.asarray(LANGUAGES)[lang], "distortion": np.asarray(DISTORTIONS)[dist],
        "speaker": np.char.add("spk", source.astype(str)), "split": np.full(n, "train"), "status": status,
        "mos_dns": mos, "ref_quality": ref_quality, "loss_proxy": loss,
    }
    table = pa.table({k: pa.array(v) for k, v in columns.items()})
    table = table.append_column(FLAGS_COLUMN, _flags(dist, rng.random(n) < spec.reverb_fraction))
    embed = pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1)), d)
    table = table.append_column("ssl_embed", embed)
    truth = pd.DataFrame({"utt_id": ids, "imperfect": imperfect.astype(int),
                          "defect": np.where(imperfect, "noise", "")})
    return table, truth


def write_synthetic(path: str | os.PathLike[str], spec: SyntheticSpec) -> pd.DataFrame:
    """Write :func:`synthetic_scores` as Parquet (row groups of 64k rows); returns the ground truth."""
    table, truth = synthetic_scores(spec)
    write_table(table, path, row_group_size=65_536)
    return truth


def _flags(dist: np.ndarray, reverberated: np.ndarray) -> pa.Array:
    """Per-augmentation flags consistent with the primary label: the label, ``noise`` unless wind, and
    ``reverb`` on the ``reverberated`` rows of other labels (a ``noise`` row is never reverberated: it would be
    labelled ``reverb``)."""
    label = np.asarray(DISTORTIONS, dtype=object)[dist]
    noise = np.where(np.isin(label, ("wind", "noise")), "", "noise")
    extra = np.where(reverberated & ~np.isin(label, ("noise", "reverb")), "reverb", "")
    parts = np.sort(np.stack([label, noise, extra], axis=1).astype(str), axis=1)  # "" sorts first
    keep = parts != ""
    offsets = np.r_[0, np.cumsum(keep.sum(axis=1))].astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(parts[keep]))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)
