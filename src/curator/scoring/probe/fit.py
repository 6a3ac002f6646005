"""Cross-fitted probe losses: assign folds, train one probe per fold, score the held-out fold."""

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


@dataclass
class FoldReport:
    fold: int
    train_utterances: int
    final_train_loss: float
    heldout_mean_loss: float | None


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


def train_probe(pairs: list[tuple[np.ndarray, np.ndarray]], params: ProbeParams, seed: int) -> tuple[ProbeMask, float]:
    """Train one probe on ``pairs`` (16 kHz noisy/clean); returns it and its last-20-step mean loss."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = ProbeMask(params.n_fft, params.hidden, params.layers, params.compress).to(DTYPE)
    opt = torch.optim.Adam(model.parameters(), lr=params.learning_rate)
    crop = int(params.crop_sec * params.sample_rate)
    recent: list[float] = []
    for _ in range(params.steps):
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
    """Per-utterance loss of ``model`` (NaN for rows that did not decode), in length-sorted batches."""
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


def cross_fit(rows: Sequence[dict[str, Any]], params: ProbeParams, rules: DecodeRules
              ) -> tuple[np.ndarray, np.ndarray, list[str], list[FoldReport]]:
    """(probe_loss, fold, status) per row and a report per fold; rows keep their order."""
    torch.set_num_threads(params.threads)
    utt_ids = [r["utt_id"] for r in rows]
    fold_of = assign_folds(utt_ids, params.folds, params.seed)
    losses = np.full(len(rows), np.nan)
    statuses = [""] * len(rows)
    reports = []
    for fold in tqdm(range(params.folds), desc="probe folds", unit="fold"):
        rng = np.random.default_rng([params.seed, fold])
        others = np.flatnonzero(fold_of != fold)
        chosen = np.sort(rng.permutation(others)[: params.train_utterances])
        train = [(n, c) for s, n, c in _decode([rows[i] for i in chosen], rules, params.sample_rate, params.threads)
                 if s == OK]
        if not train:
            raise ValueError(f"probe fold {fold}: no decodable training utterance among {len(chosen)} drawn")
        model, train_loss = train_probe(train, params, seed=params.seed * params.folds + fold)
        held = np.flatnonzero(fold_of == fold)
        decoded = _decode([rows[i] for i in held], rules, params.sample_rate, params.threads)
        losses[held] = heldout_losses(model, decoded, params.eval_batch_size)
        for i, (status, _, _) in zip(held, decoded, strict=True):
            statuses[i] = status
        scored = losses[held][np.isfinite(losses[held])]
        reports.append(FoldReport(fold, len(train), round(train_loss, 6),
                                  round(float(scored.mean()), 6) if scored.size else None))
    return losses, fold_of, statuses, reports
