"""Enhance a split utterance by utterance and score enhanced and noisy input with the registered metrics.

Audio is processed in chunks of ``chunk_utts`` utterances so memory stays bounded on large test sets; the
per-utterance metrics of a chunk run across a process pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Executor

import numpy as np
import pandas as pd
from tqdm import tqdm

from curator.audio import AudioError, load_audio, row_decoding
from curator.contract.flags import FLAGS_COLUMN
from curator.contract.manifest import read_manifest, resolve_path
from curator.contract.scores import FLOAT_DECIMALS
from curator.evaluation.enhance import Enhancer, peak_normalize
from curator.evaluation.metrics import DEFAULT_OPTIONS, Metric, MetricOptions, compute_metrics
from curator.evaluation.report import GAIN_COLUMN, NOISY_PREFIX, POOL_WEIGHT_SUFFIX
from curator.evaluation.slicing import flag_strings

ROW_COLUMNS = ("utt_id", "sr", "language", "distortion", "source", "speaker", "duration_sec", "snr_db")
LABEL_COLUMNS = ("text", "language")  # the manifest labels that label-reading metrics (CAcc) are handed
_ENERGY_FLOOR = 1e-12


def select_rows(manifest_path: str, max_utts: int | None) -> pd.DataFrame:
    """A split's rows sorted by utt_id; when capped, evenly spaced over that order (deterministic)."""
    rows = read_manifest(manifest_path).sort_values("utt_id", kind="stable").reset_index(drop=True)
    if max_utts is not None and len(rows) > max_utts:
        rows = rows.iloc[np.unique(np.linspace(0, len(rows) - 1, max_utts).round().astype(int))]
    return rows.reset_index(drop=True)


def _load_pair(row: pd.Series, silent_peak: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Noisy input and reference; the reference is None when absent or silent (a speech-free example). Decoded
    as the manifest row says (resampled to its rate, channels by its policy); NaN/inf samples raise."""
    target, channels = row_decoding(row)
    noisy, sr = load_audio(resolve_path(row["path"]), sr=target, channels=channels)
    if sr != row["sr"]:
        raise AudioError(f"'{row['path']}' is {sr} Hz but its manifest row says {row['sr']} Hz")
    if row["clean_path"] is None or pd.isna(row["clean_path"]):
        return noisy, None
    clean, clean_sr = load_audio(resolve_path(row["clean_path"]), sr=target, channels=channels)
    if clean_sr != sr:
        raise AudioError(f"'{row['clean_path']}' is {clean_sr} Hz but its noisy input is {sr} Hz")
    n = min(len(noisy), len(clean))
    if not n or float(np.max(np.abs(clean[:n]))) < silent_peak:
        return noisy, None
    return noisy[:n], clean[:n]


class EnhancementError(AudioError):
    """The model cannot run on an utterance (e.g. a rate it does not support) or returned NaN/inf samples."""


def _enhance(enhancer: Enhancer, utt_id: str, x: np.ndarray, sr: int) -> np.ndarray:
    """The enhancer's output, or an :class:`EnhancementError` saying why there is none for this utterance."""
    if not len(x):  # a model's STFT has nothing to reduce over (torch raises a RuntimeError, not a refusal)
        raise EnhancementError("the input holds no samples")
    try:
        raw = enhancer(utt_id, x, sr)
    except ValueError as exc:  # the model's own refusal (BSRNN: a rate above max_sr or without a whole window)
        raise EnhancementError(f"enhancement failed: {exc}") from exc
    if not np.isfinite(raw).all():
        raise EnhancementError("enhancement output holds NaN or infinite samples")
    return raw


def energy_ratio_db(output: np.ndarray, inp: np.ndarray) -> float:
    """10 log10 of output over input energy: how much a model attenuates (negative) or amplifies."""
    out_e = float(np.dot(output, output)) + _ENERGY_FLOOR
    in_e = float(np.dot(inp, inp)) + _ENERGY_FLOOR
    return 10.0 * float(np.log10(out_e / in_e))


def score_split(rows: pd.DataFrame, enhancer: Enhancer, metrics: Sequence[Metric], peak: float,
                silent_peak: float, chunk_utts: int, pool: Executor | None,
                desc: str, options: MetricOptions = DEFAULT_OPTIONS) -> tuple[pd.DataFrame, list[str]]:
    """Per-utterance scores and the utterances skipped, each as ``"<utt_id>: <reason naming the file>"``: an input
    that does not decode, holds NaN/inf samples or is not at its row's rate, a rate the model cannot run at,
    or an output with NaN/inf samples. A skipped utterance reaches no metric; the rest of the split goes on.

    Columns: ``<metric>`` of the peak-normalised enhanced output, ``noisy_<metric>`` of the input, and
    ``<metric>_pool_weight`` where a metric's official set-level figure is a weighted mean (CAcc), and
    ``output_to_input_db`` of the raw output (before peak normalisation, which would hide suppression), rounded to
    ``FLOAT_DECIMALS`` as the scores are: reference implementations (pystoi) jitter by ~1e-16 from run to run,
    and the per-utterance file must be the same bytes for the same inputs.
    """
    frames, skipped = [], []
    bar = tqdm(total=len(rows), desc=desc, unit="utt")
    for lo in range(0, len(rows), chunk_utts):
        chunk = rows.iloc[lo:lo + chunk_utts]
        loaded: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        for i, row in chunk.iterrows():  # decode first: an enhancer is never handed a file that was skipped
            try:
                loaded[i] = _load_pair(row, silent_peak)
            except AudioError as exc:
                skipped.append(f"{row['utt_id']}: {exc}")
                tqdm.write(f"skip {skipped[-1]}")
        bar.update(len(chunk) - len(loaded))
        if loaded:
            enhancer.prepare(chunk.loc[list(loaded)])
        kept, noisy, clean, enhanced, gains = [], [], [], [], []
        for i, (x, ref) in loaded.items():
            bar.update()
            row = chunk.loc[i]
            try:
                raw = _enhance(enhancer, str(row["utt_id"]), x, int(row["sr"]))
            except AudioError as exc:
                skipped.append(f"{row['utt_id']}: {exc}")
                tqdm.write(f"skip {skipped[-1]}")
                continue
            kept.append(i)
            noisy.append(x)
            clean.append(ref)
            gains.append(energy_ratio_db(raw, x))
            enhanced.append(peak_normalize(raw, peak))
        if not kept:
            continue
        part = chunk.loc[kept, [c for c in ROW_COLUMNS if c in chunk.columns]].copy()
        part.insert(part.columns.get_loc("distortion") + 1 if "distortion" in part.columns else len(part.columns),
                    FLAGS_COLUMN, flag_strings(chunk.loc[kept]))
        part["has_reference"] = [c is not None for c in clean]
        part[GAIN_COLUMN] = gains
        srs = part["sr"].to_numpy()
        labels = chunk.loc[kept, [c for c in LABEL_COLUMNS if c in chunk.columns]].to_dict("records")
        for name, values in compute_metrics(metrics, enhanced, clean, srs, pool, options, labels).items():
            part[name] = np.round(values, FLOAT_DECIMALS)
        for name, values in compute_metrics(metrics, noisy, clean, srs, pool, options, labels).items():
            part[NOISY_PREFIX + name] = np.round(values, FLOAT_DECIMALS)
        for metric in metrics:
            if metric.pool_weights is not None and (w := metric.pool_weights(labels, options)) is not None:
                part[metric.name + POOL_WEIGHT_SUFFIX] = w
        part[GAIN_COLUMN] = np.round(part[GAIN_COLUMN].to_numpy(dtype=np.float64), FLOAT_DECIMALS)
        frames.append(part)
    bar.close()
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), skipped
