"""Render simulated utterances from ``meta.tsv`` rows and write the official list layout.

The order of operations is the official one: (optional high-pass) -> reverberation (the target gets only
the early RIR) -> noise at the drawn SNR (or wind mixing) -> extra augmentations in drawn order -> one
common peak normalisation of noisy, target and noise. Each row is rendered from its own parameters and a
generator seeded by its id's numeric suffix (as the official renderer), so the result does not depend on
worker count or order. Every step follows the official ``simulate_data_from_param.py`` (measured row for row
by ``benchmarks/bench_simulation_fidelity.py``).
"""

from __future__ import annotations

import ast
import functools
import re
import zlib
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from curator.audio import AudioError, load_audio, save_audio
from curator.datasets.kaldi import NONE, write_kv, write_meta_tsv
from curator.datasets.labels import language_of
from curator.datasets.params import SimulationParams
from curator.datasets.simulation import distortions as D
from curator.datasets.simulation.sources import Sources
from curator.determinism import pin_threads

RENDER_THREADS = 1
"""BLAS/OpenMP threads per rendering process (fixed, so multi-threaded reductions keep one order)."""
LOAD_CACHE_SIZE = 64
"""Decoded noise/RIR clips kept per worker (pools are reused across utterances)."""

_WIND = re.compile(r"wind_noise\(threshold=(.*),ratio=(.*),attack=(.*),release=(.*),sc_gain=(.*),"
                   r"clipping=(True|False),clipping_threshold=(.*)\)")
_BANDWIDTH = re.compile(r"bandwidth_limitation-(.*)->(\d+)")
_CLIPPING = re.compile(r"clipping\(min=(.*),max=(.*)\)")
_CODEC = re.compile(r"codec\(format=(.*),encoder=(.*),qscale=(-?\d+)\)")
_PACKET = re.compile(r"packet_loss\(packet_loss_indices=(\[.*\]),packet_duration_ms=(\d+)\)")


PEAK_FLOOR = 1e-6
"""The final peak normalisation divides by at least this (the official floor), so silence stays silence."""


class RenderError(ValueError):
    """A meta.tsv row cannot be rendered; the message names the row id."""


def row_rng(seed: int, uid: str) -> np.random.Generator:
    """The generator of a row's noise excerpt: seeded by the id's numeric suffix (``fileid_12`` -> 12), as the
    official renderer does, so an official row gets the official excerpt. An id without a numeric suffix
    (not an official one) falls back to a hash of ``seed`` and the id."""
    suffix = uid.rsplit("_", 1)[-1]
    if suffix.isdigit():
        return np.random.default_rng(int(suffix))
    return np.random.default_rng([seed, zlib.crc32(uid.encode("utf-8"))])


@functools.lru_cache(maxsize=LOAD_CACHE_SIZE)
def _load_cached(path: str, sr: int) -> np.ndarray:
    return load_audio(path, sr=sr)[0]


def apply_augmentation(x: np.ndarray, aug: str, fs: int) -> np.ndarray:
    """Apply one official augmentation string (wind is handled by the mixing step, not here)."""
    if m := _BANDWIDTH.fullmatch(aug):
        method, fs_new = m.group(1), int(m.group(2))
        return x if method == NONE else D.bandwidth_limitation(x, fs, fs_new, method)
    if m := _CLIPPING.fullmatch(aug):
        return D.clipping(x, float(m.group(1)), float(m.group(2)))
    if m := _CODEC.fullmatch(aug):
        encoder = None if m.group(2) == "None" else m.group(2)
        return D.codec(x, fs, m.group(1), encoder, int(m.group(3)))
    if m := _PACKET.fullmatch(aug):
        return D.packet_loss(x, fs, ast.literal_eval(m.group(1)), int(m.group(2)))
    raise ValueError(f"unknown augmentation string {aug!r}")


def render_row(row: dict[str, str], sources: Sources, sim: SimulationParams) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, target) for one meta row, both ``length`` samples at ``fs``, peak-normalised together."""
    _check_row_sources(row, sources)
    fs, n = int(row["fs"]), int(row["length"])
    if row["speech_uid"] == NONE:
        speech = np.zeros(n, dtype=np.float64)
    else:
        speech = D.fit_length(load_audio(sources.resolve(sources.speech[row["speech_uid"]].path), sr=fs)[0], n)
    return mix_row(row, speech, sources, sim)


def _check_row_sources(row: dict[str, str], sources: Sources) -> None:
    """Every source a row names is in the pools (a dict lookup each: pools hold up to millions of entries)."""
    for key, pools in (("speech_uid", (sources.speech,)), ("noise_uid", (sources.noise, sources.wind)),
                       ("rir_uid", (sources.rir,))):
        if row[key] != NONE and not any(row[key] in pool for pool in pools):
            raise RenderError(f"row '{row['id']}': {key} '{row[key]}' is in none of the source lists")


def mix_row(row: dict[str, str], speech: np.ndarray, sources: Sources, sim: SimulationParams
            ) -> tuple[np.ndarray, np.ndarray]:
    """(noisy, target) of one meta row from its clean ``speech`` (``length`` samples at ``fs``; zeros for a
    speech-free row): what :func:`render_row` does after loading the speech, and what dynamic mixing calls on
    an excerpt it has already read."""
    _check_row_sources(row, sources)
    uid, fs, n = row["id"], int(row["fs"]), int(row["length"])
    if len(speech) != n:
        raise RenderError(f"row '{uid}': speech has {len(speech)} samples, the row says length {n}")
    rng = row_rng(sim.seed, uid)
    augs = [a for a in row["augmentation"].split("/") if a and a != NONE]
    if row["speech_uid"] != NONE:
        if sim.highpass:
            try:
                speech = D.highpass(speech, fs, sim.highpass_hz, sim.highpass_transition_hz, sim.highpass_attenuation)
            except ValueError as exc:  # shorter than filtfilt's padding
                raise RenderError(f"row '{uid}': cannot high-pass {n} samples: {exc}") from exc
    speech = np.asarray(speech, dtype=np.float64)
    noisy, target = speech, speech
    if row["rir_uid"] != NONE:
        rir = _load_cached(str(sources.resolve(sources.rir[row["rir_uid"]].path)), fs)
        noisy = D.reverberate(speech, rir)
        target = D.reverberate(speech, D.early_rir(rir, fs, sim.early_rir_sec, sim.rir_start_level))
    pool = sources.wind if row["noise_uid"] in sources.wind else sources.noise
    noise = D.fit_noise(_load_cached(str(sources.resolve(pool[row["noise_uid"]].path)), fs), n, rng)
    if row["speech_uid"] != NONE:
        noise = D.scale_to_snr(noisy, noise, float(row["snr_dB"]), sim.active_threshold, sim.active_frame_length,
                               sim.active_frame_shift)
    noise = np.asarray(noise, dtype=np.float64)
    wind = [a for a in augs if a.startswith("wind_noise")]
    if wind:
        m = _WIND.fullmatch(wind[0])
        if m is None:
            raise RenderError(f"row '{uid}': malformed wind augmentation {wind[0]!r}")
        thr, ratio, att, rel, sc, clip, clip_thr = m.groups()
        clipped = sim.wind.clip_always or clip == "True"
        noisy, noise, work_scale = D.wind_mix(noisy, noise, fs, float(thr), float(ratio), float(att), float(rel),
                                              float(sc), float(clip_thr) if clipped else None)
        if row["rir_uid"] == NONE and sim.wind.scale_dry_clean:
            target = target * work_scale
    else:
        noisy = noisy + noise
    for aug in augs:
        if not aug.startswith("wind_noise"):
            try:
                noisy = apply_augmentation(noisy, aug, fs)
            except ValueError as exc:
                raise RenderError(f"row '{uid}': {exc}") from exc
    peak = max(float(np.max(np.abs(noisy))), float(np.max(np.abs(target))), float(np.max(np.abs(noise))), PEAK_FLOOR)
    scale = sim.peak_norm / peak
    return (noisy * scale).astype(np.float32), (target * scale).astype(np.float32)


_CTX: dict[str, object] = {}


def _init_worker(sources: Sources, sim: SimulationParams, root: Path) -> None:
    pin_threads(RENDER_THREADS)
    _CTX.update(sources=sources, sim=sim, root=root)


def _render_and_save(row: dict[str, str]) -> str | None:
    """Render one row; a source that cannot be used becomes an error message, not a crash half-way."""
    sources, sim, root = _CTX["sources"], _CTX["sim"], _CTX["root"]
    try:
        noisy, target = render_row(row, sources, sim)  # type: ignore[arg-type]
    except (AudioError, RenderError) as exc:
        return str(exc)
    save_audio(Path(root) / row["noisy_path"], noisy, int(row["fs"]))  # type: ignore[arg-type]
    save_audio(Path(root) / row["clean_path"], target, int(row["fs"]))  # type: ignore[arg-type]
    return None


def render_all(rows: Sequence[dict[str, str]], sources: Sources, sim: SimulationParams, root: Path,
               workers: int, desc: str = "simulate") -> dict[str, str]:
    """Render and save every row (paths relative to ``root``) with ``workers`` processes.

    Returns ``{id: error}`` for rows whose sources could not be used (undecodable, NaN ...).
    """
    if workers <= 1:
        _init_worker(sources, sim, root)
        errors = [_render_and_save(row) for row in tqdm(rows, desc=desc, unit="utt")]
    else:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(sources, sim, root)) as pool:
            errors = list(tqdm(pool.map(_render_and_save, rows, chunksize=8), total=len(rows), desc=desc, unit="utt"))
    return {row["id"]: err for row, err in zip(rows, errors, strict=True) if err is not None}


def write_lists(rows: Sequence[dict[str, str]], utt2lang: dict[str, str], list_dir: Path,
                meta_path: Path | None) -> None:
    """The official list layout of a simulated set: wav.scp, spk1.scp, utt2spk, text, utt2fs, utt2lang,
    speech_length.scp (sorted by id, paths as in meta.tsv) and, given ``meta_path``, the meta.tsv log."""
    if meta_path is not None:
        write_meta_tsv(meta_path, rows)
    by_id = {r["id"]: r for r in rows}
    write_kv(list_dir / "wav.scp", {k: r["noisy_path"] for k, r in by_id.items()})
    write_kv(list_dir / "spk1.scp", {k: r["clean_path"] for k, r in by_id.items()})
    write_kv(list_dir / "utt2spk", {k: r["speech_sid"] for k, r in by_id.items()})
    write_kv(list_dir / "text", {k: r["text"] for k, r in by_id.items()})
    write_kv(list_dir / "utt2fs", {k: r["fs"] for k, r in by_id.items()})
    write_kv(list_dir / "speech_length.scp", {k: r["length"] for k, r in by_id.items()})
    write_kv(list_dir / "utt2lang", {k: language_of(r["speech_uid"], utt2lang) for k, r in by_id.items()})
