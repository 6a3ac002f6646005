"""The distortions of the official URGENT training simulation as pure numpy functions on 1-D float arrays.

Each takes its parameters explicitly (already drawn, as recorded in ``meta.tsv``), so the same call
reproduces an utterance exactly and each function can be tested for its measurable property.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import scipy.signal

from curator.audio import codec_roundtrip, resample

POWER_FLOOR = 1e-10
"""Noise power floor of the SNR scaling (an all-zero noise clip stays zero instead of dividing by zero)."""

_SOXR_QUALITY = {"soxr_vhq": "VHQ", "soxr_hq": "HQ", "soxr_mq": "MQ", "soxr_lq": "LQ"}
MP3_QSCALE_STEPS = 10
"""LAME VBR quality runs 0 (best) .. 9 (worst); libsndfile's level is that quality / 10 (1.0 is rejected)."""
OGG_QSCALE_RANGE = (-1, 10)
"""ffmpeg ogg quality runs -1 (worst) .. 10 (best)."""
WIND_WORK_PEAK = 0.9
"""The official wind mixer compares speech and wind after scaling both to this common peak."""
ENVELOPE_HOP_MS = 1.0
"""Frame hop of the compressor's level detector (1 ms resolves the 5 ms fastest attack)."""


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``x`` to ``n`` samples."""
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def active_power(x: np.ndarray, sr: int, frame_sec: float, threshold: float) -> float:
    """Mean power over the active frames: those whose power exceeds ``threshold`` x the mean frame power.

    This keeps pauses from diluting the SNR, as the official simulation's non-silence detector does.
    """
    x = np.asarray(x, dtype=np.float64)
    frame = max(1, int(round(frame_sec * sr)))
    n_frames = max(1, -(-len(x) // frame))
    padded = np.zeros(n_frames * frame)
    padded[: len(x)] = x
    power = np.square(padded).reshape(n_frames, frame).mean(axis=1)
    mean = power.mean()
    if mean <= 0:
        return 0.0
    return float(power[power > threshold * mean].mean())


def fit_noise(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``noise``, wrapped around (with a random start) when it is shorter."""
    if len(noise) == n:
        return noise
    if len(noise) > n:
        start = int(rng.integers(0, len(noise) - n))
        return noise[start : start + n]
    offset = int(rng.integers(0, n - len(noise)))
    return np.pad(noise, (offset, n - len(noise) - offset), mode="wrap")


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, sr: int, frame_sec: float,
                 threshold: float) -> np.ndarray:
    """``noise`` scaled so that active speech power / active noise power equals ``snr_db``."""
    ps = active_power(speech, sr, frame_sec, threshold)
    pn = active_power(noise, sr, frame_sec, threshold)
    return (noise * (10 ** (-snr_db / 20) * np.sqrt(ps) / np.sqrt(max(pn, POWER_FLOOR)))).astype(np.float32)


def rir_start(rir: np.ndarray, level: float) -> int:
    """Direct-path sample: the first sample (up to the peak) whose magnitude exceeds ``level`` x the peak."""
    mag = np.abs(rir)
    peak = int(np.argmax(mag))
    return int(np.argmax(mag[: peak + 1] > level * mag[peak]))


def early_rir(rir: np.ndarray, sr: int, early_sec: float, level: float) -> np.ndarray:
    """The RIR with everything later than direct path + ``early_sec`` zeroed (the training target's RIR)."""
    out = np.array(rir, dtype=np.float32, copy=True)
    out[rir_start(rir, level) + int(early_sec * sr) :] = 0.0
    return out


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve and keep the input's length (the direct-path delay stays, in noisy and target alike)."""
    return scipy.signal.oaconvolve(x, rir)[: len(x)].astype(np.float32)


def bandwidth_limitation(x: np.ndarray, sr: int, sr_low: int, method: str) -> np.ndarray:
    """Resample down to ``sr_low`` and back to ``sr``: removes everything above ``sr_low / 2``."""
    if sr_low >= sr:
        return x
    if method == "polyphase":
        g = gcd(sr, sr_low)
        y = scipy.signal.resample_poly(x, sr_low // g, sr // g)
        y = scipy.signal.resample_poly(y, sr // g, sr_low // g)
    elif method in _SOXR_QUALITY:
        y = resample(resample(x, sr, sr_low, quality=_SOXR_QUALITY[method]), sr_low, sr,
                     quality=_SOXR_QUALITY[method])
    else:
        raise ValueError(f"unknown resample method '{method}'; valid: {', '.join([*_SOXR_QUALITY, 'polyphase'])}")
    return fit_length(np.asarray(y, dtype=np.float32), len(x))


def clipping(x: np.ndarray, min_quantile: float, max_quantile: float) -> np.ndarray:
    """Clip to the signal's own ``min_quantile`` and ``max_quantile`` values (flat tops at those levels)."""
    lo, hi = np.quantile(x, [min_quantile, max_quantile])
    return np.clip(x, lo, hi).astype(np.float32)


def codec_level(fmt: str, qscale: int) -> float:
    """Map the official ffmpeg ``qscale`` onto libsndfile's 0 (best) .. 1 (worst) compression level."""
    if fmt == "mp3":
        return float(np.clip(qscale / MP3_QSCALE_STEPS, 0.0, (MP3_QSCALE_STEPS - 1) / MP3_QSCALE_STEPS))
    lo, hi = OGG_QSCALE_RANGE
    return float(np.clip((hi - qscale) / (hi - lo), 0.0, 1.0))


def codec(x: np.ndarray, sr: int, fmt: str, encoder: str | None, qscale: int) -> np.ndarray:
    """mp3 / ogg-vorbis / ogg-opus round trip in memory; same length as the input."""
    return codec_roundtrip(x, sr, fmt, encoder, codec_level(fmt, qscale))


def packet_loss_indices(n_samples: int, sr: int, packet_ms: int, loss_rate: float, max_burst: int,
                        rng: np.random.Generator) -> list[int]:
    """Lost packet indices: ``round(loss_rate x packets)`` packets in bursts of 1 .. ``max_burst - 1``.

    Bursts are placed without overlapping or touching, so the realised loss rate and burst lengths are
    exactly the drawn ones (the official draw lets bursts overlap, which lowers the realised rate).
    """
    n_packets = int(n_samples * 1000 // (packet_ms * sr))
    n_lost = min(int(round(loss_rate * n_samples * 1000 / sr / packet_ms)), n_packets)
    if n_lost == 0:
        return []
    lengths: list[int] = []
    while sum(lengths) < n_lost:
        lengths.append(int(rng.integers(1, max_burst)))
    lengths[-1] -= sum(lengths) - n_lost
    while len(lengths) > 1 and n_packets - n_lost - (len(lengths) - 1) < 0:
        lengths[-2] += lengths.pop()
    spare = n_packets - n_lost - (len(lengths) - 1)
    slots = np.sort(rng.choice(spare + len(lengths), size=len(lengths), replace=False))
    starts = slots + np.concatenate([[0], np.cumsum(lengths[:-1])])
    return sorted(int(s + k) for s, n in zip(starts, lengths, strict=True) for k in range(n))


def packet_loss(x: np.ndarray, sr: int, indices: list[int], packet_ms: int) -> np.ndarray:
    """Zero the listed ``packet_ms`` packets (packet k spans samples ``k*P*sr//1000 .. (k+1)*P*sr//1000``)."""
    out = np.array(x, dtype=np.float32, copy=True)
    if not indices:
        return out
    idx = np.asarray(indices, dtype=np.int64)
    bounds = np.stack([idx * packet_ms * sr // 1000, (idx + 1) * packet_ms * sr // 1000], axis=1)
    mask = np.zeros(len(x) + 1, dtype=np.int32)
    np.add.at(mask, np.clip(bounds[:, 0], 0, len(x)), 1)
    np.add.at(mask, np.clip(bounds[:, 1], 0, len(x)), -1)
    out[np.cumsum(mask[:-1]) > 0] = 0.0
    return out


def sidechain_compress(x: np.ndarray, sidechain: np.ndarray, sr: int, threshold: float, ratio: float,
                       attack_ms: float, release_ms: float) -> np.ndarray:
    """Duck ``x`` when the ``sidechain`` level exceeds ``threshold`` (a feed-forward compressor).

    The level is the RMS of ``ENVELOPE_HOP_MS`` frames followed by attack/release smoothing; above the
    threshold the gain follows ``threshold * (level / threshold) ** (1 / ratio) / level``.
    """
    hop_ms = ENVELOPE_HOP_MS
    hop = max(1, int(sr * hop_ms / 1000))
    n_frames = -(-len(x) // hop)
    padded = np.zeros(n_frames * hop, dtype=np.float64)
    padded[: len(sidechain)] = sidechain[: len(padded)]
    rms = np.sqrt(np.square(padded).reshape(n_frames, hop).mean(axis=1))
    a_att = np.exp(-hop_ms / attack_ms)
    a_rel = np.exp(-hop_ms / release_ms)
    env = np.empty_like(rms)
    level = 0.0
    for i, r in enumerate(rms):  # recursive envelope: one step per 1 ms frame, not per sample
        coef = a_att if r > level else a_rel
        level = coef * level + (1.0 - coef) * r
        env[i] = level
    over = env > threshold
    gain = np.ones_like(env)
    gain[over] = threshold * (env[over] / threshold) ** (1.0 / ratio) / env[over]
    gains = np.repeat(gain, hop)[: len(x)]
    return (x * gains).astype(np.float32)


def wind_mix(speech: np.ndarray, wind: np.ndarray, sr: int, threshold: float, ratio: float, attack_ms: float,
             release_ms: float, sc_gain: float, clip: bool, clip_threshold: float) -> np.ndarray:
    """Official-style wind mixing of already SNR-scaled ``wind``: speech ducked by the gusts, summed, then
    (optionally) clipped at ``clip_threshold`` x the mix's own minimum and maximum.

    Levels are compared after both are scaled to a common ``WIND_WORK_PEAK``, as the official ffmpeg graph
    sees them.
    """
    scale = WIND_WORK_PEAK / max(float(np.max(np.abs(speech))), float(np.max(np.abs(wind))), POWER_FLOOR)
    ducked = sidechain_compress(speech * scale, wind * scale * sc_gain, sr, threshold, ratio, attack_ms,
                                release_ms) / scale
    mix = ducked + wind
    if clip:
        mix = np.clip(mix, clip_threshold * mix.min(), clip_threshold * mix.max())
    return mix.astype(np.float32)


def highpass(x: np.ndarray, sr: int, cutoff_hz: float, order: int) -> np.ndarray:
    """Zero-phase Butterworth high-pass (removes rumble below ``cutoff_hz`` from clean speech)."""
    sos = scipy.signal.butter(order, cutoff_hz, btype="highpass", fs=sr, output="sos")
    return scipy.signal.sosfiltfilt(sos, x).astype(np.float32)
