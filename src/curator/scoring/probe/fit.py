"""Cross-fitted probe losses: assign folds, train one probe per fold, score the held-out fold (and, for
RHO-LOSS's reducible loss, a current-model probe per fold on the fold itself)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from curator.audio import resample
from curator.scoring.base import pad
from curator.scoring.decode import OK, DecodeRules, decode_pair
from curator.scoring.probe.model import ProbeMask
from curator.scoring.probe.params import ProbeParams

DTYPE = torch.float64
"""The probe trains and scores in float64. Its float32 kernels (MKL/oneDNN GEMM and FFT, ATen's vectorised
reductions) pick AVX-512 or AVX2 code by CPU, and 200 optimiser steps amplify their last-bit differences
past the 6 decimals stored in the Parquet; in float64 they stay orders of magnitude below that rounding."""


CURRENT_SEED_OFFSET = 1 << 20
"""Added to a fold's seed for its current-model probe (never the same draws as an irreducible-loss probe)."""


@dataclass
class FoldReport:
    fold: int
    rows: int
    train_utterances: int
    final_train_loss: float | None
    heldout_mean_loss: float | None
    current_train_utterances: int | None = None
    current_mean_loss: float | None = None
    skipped: str | None = None
    """Why this fold's rows have no held-out loss (empty fold, no other fold to train on), else None."""


@dataclass
class ProbeResult:
    """Per-row losses (row order kept), folds, decode statuses and one report per fold."""

    holdout: np.ndarray
    """Loss of the probe trained on the other folds (it never saw the row): RHO-LOSS's irreducible loss."""
    current: np.ndarray | None
    """``reducible_loss`` only: loss of the current-model probe, trained on the row's own fold (its training
    data) for ``probe.current_steps`` steps."""
    folds: np.ndarray
    statuses: list[str]
    reports: list[FoldReport]

    @property
    def reducible(self) -> np.ndarray | None:
        """RHO-LOSS's reducible (holdout) loss: current-model loss minus irreducible (held-out) loss."""
        return None if self.current is None else self.current - self.holdout


def assign_folds(utt_ids: Sequence[str], folds: int, seed: int) -> np.ndarray:
    """Fold of every utterance from a seeded hash of its id: stable under reordering and filtering."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{u}".encode(), digest_size=8).digest(), "big") % folds
                     for u in utt_ids], dtype=np.int64)


def _decode(rows: Sequence[dict[str, Any]], rules: DecodeRules, sr: int, threads: int
            ) -> list[tuple[str, np.ndarray | None, np.ndarray | None]]:
    """(status, noisy, clean) at ``sr`` for every row, decoded by ``threads`` threads."""
    def one(row: dict[str, Any]) -> tuple[str, np.ndarray | None, np.ndarray | None]:
        d = decode_pair(row, rules)
        if d.status != OK:
            return d.status, None, None
        return OK, resample(d.noisy, d.sr, sr), resample(d.clean, d.sr, sr)  # type: ignore[arg-type]

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, rows))


def _crop_batch(pairs: list[tuple[np.ndarray, np.ndarray]], rng: np.random.Generator, size: int,
                crop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A training batch of random ``crop``-sample excerpts (zero-padded when an utterance is shorter)."""
    noisy = np.zeros((size, crop), dtype=np.float32)
    clean = np.zeros((size, crop), dtype=np.float32)
    lengths = np.empty(size, dtype=np.int64)
    for b, k in enumerate(rng.integers(len(pairs), size=size)):
        n, c = pairs[k]
        start = int(rng.integers(max(len(n) - crop, 0) + 1))
        seg = slice(start, start + crop)
        lengths[b] = len(n[seg])
        noisy[b, : lengths[b]], clean[b, : lengths[b]] = n[seg], c[seg]
    return torch.from_numpy(noisy).to(DTYPE), torch.from_numpy(clean).to(DTYPE), torch.from_numpy(lengths)


def train_probe(pairs: list[tuple[np.ndarray, np.ndarray]], params: ProbeParams, seed: int,
                steps: int | None = None) -> tuple[ProbeMask, float]:
    """Train one probe on ``pairs`` (16 kHz noisy/clean) for ``steps`` (default ``probe.steps``) optimiser
    steps; returns it and its last-20-step mean loss."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ProbeMask(params.n_fft, params.hidden, params.layers, params.compress).to(DTYPE)
    opt = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    crop = int(params.crop_sec * params.sample_rate)
    recent: list[float] = []
    for _ in range(params.steps if steps is None else steps):
        noisy, clean, lengths = _crop_batch(pairs, rng, params.batch_size, crop)
        loss = model.utterance_loss(noisy, clean, lengths).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        recent = [*recent[-19:], loss.detach().item()]
    return model.eval(), float(np.mean(recent))


@torch.inference_mode()
def heldout_losses(model: ProbeMask, decoded: list[tuple[str, np.ndarray | None, np.ndarray | None]],
                   batch_size: int) -> np.ndarray:
    """Per-utterance loss of ``model`` on ``decoded`` (NaN for rows that did not decode), in length-sorted
    batches (held-out when the model never saw them)."""
    out = np.full(len(decoded), np.nan)
    ok = [i for i, (status, _, _) in enumerate(decoded) if status == OK]
    ok.sort(key=lambda i: len(decoded[i][1]))  # type: ignore[arg-type]
    for start in range(0, len(ok), batch_size):
        rows = ok[start:start + batch_size]
        noisy, lengths = pad([decoded[i][1] for i in rows])  # type: ignore[misc]
        clean, _ = pad([decoded[i][2] for i in rows])  # type: ignore[misc]
        out[rows] = model.utterance_loss(torch.from_numpy(noisy).to(DTYPE), torch.from_numpy(clean).to(DTYPE),
                                         torch.from_numpy(lengths)).numpy()
    return out


def cross_fit(rows: Sequence[dict[str, Any]], params: ProbeParams, rules: DecodeRules) -> ProbeResult:
    """Cross-fitted probe losses of every row (rows keep their order).

    Every row gets the **held-out loss** of a probe trained on a random subset of the *other* folds
    (``probe.steps`` steps): a model that never saw it. That is RHO-LOSS's irreducible-loss model (Mindermann
    et al., 2022, whose holdout set may be the training set split in two, each half scored by the model of the
    other). Ranked alone (``probe.ranking: holdout_loss``), it is a difficulty measure: it is high for hard
    rows and for rows whose target cannot be predicted at all (a noisy or wrong reference).

    With ``probe.ranking: reducible_loss`` a second probe per fold, the **current model**, trains on a random
    subset of the row's *own* fold (the data the row belongs to, as RHO-LOSS's target model trains on the
    candidates' pool) for ``probe.current_steps`` steps, standing in for the model being trained partway
    through (RHO-LOSS reads that loss online; a data stage has to fix one point). ``reducible = current -
    held-out``: high where training on such data has not yet reached what a model can reach, near zero where
    nothing is learnable (a noisy target is high under both models), so noisy-target rows rank lower than by
    held-out loss alone.

    A fold no row hashed to is skipped; rows whose fold has no decodable row outside it to train a probe on (a
    tiny pool: every row in one fold) keep a NaN held-out loss, and their fold report says why.
    """
    torch.set_num_threads(params.threads)
    utt_ids = [r["utt_id"] for r in rows]
    fold_of = assign_folds(utt_ids, params.folds, params.seed)
    holdout = np.full(len(rows), np.nan)
    current = np.full(len(rows), np.nan) if params.ranking == "reducible_loss" else None
    statuses = [""] * len(rows)
    reports = []
    for fold in tqdm(range(params.folds), desc="probe folds", unit="fold"):
        held = np.flatnonzero(fold_of == fold)
        if held.size == 0:
            reports.append(FoldReport(fold, 0, 0, None, None, skipped="empty fold: no row hashed to it"))
            continue
        rng = np.random.default_rng([params.seed, fold])
        others = np.flatnonzero(fold_of != fold)
        chosen = np.sort(rng.permutation(others)[: params.train_utterances])
        train = [(n, c) for s, n, c in _decode([rows[i] for i in chosen], rules, params.sample_rate, params.threads)
                 if s == OK]
        decoded = _decode([rows[i] for i in held], rules, params.sample_rate, params.threads)
        for i, (status, _, _) in zip(held, decoded, strict=True):
            statuses[i] = status
        report = FoldReport(fold, int(held.size), len(train), None, None)
        if train:
            model, train_loss = train_probe(train, params, seed=params.seed * params.folds + fold)
            holdout[held] = heldout_losses(model, decoded, params.eval_batch_size)
            scored = holdout[held][np.isfinite(holdout[held])]
            report.final_train_loss = round(train_loss, 6)
            report.heldout_mean_loss = round(float(scored.mean()), 6) if scored.size else None
        else:
            report.skipped = (f"no row outside fold {fold} to train its held-out probe on (all {len(rows)} rows "
                              f"hash to this fold; the pool is too small for {params.folds} folds)" if not others.size
                              else f"none of the {len(chosen)} rows drawn from the other folds decodes")
        if current is not None:
            own = [i for i, (status, _, _) in enumerate(decoded) if status == OK]
            pick = np.sort(np.random.default_rng([params.seed, fold, 1]).permutation(len(own))[: params.train_utterances])
            pairs = [(decoded[own[k]][1], decoded[own[k]][2]) for k in pick]
            report.current_train_utterances = len(pairs)
            if pairs:
                model, _ = train_probe(pairs, params, seed=CURRENT_SEED_OFFSET + params.seed * params.folds + fold,
                                       steps=params.current_steps)
                current[held] = heldout_losses(model, decoded, params.eval_batch_size)
                mine = current[held][np.isfinite(current[held])]
                report.current_mean_loss = round(float(mine.mean()), 6) if mine.size else None
        reports.append(report)
    return ProbeResult(holdout, current, fold_of, statuses, reports)
