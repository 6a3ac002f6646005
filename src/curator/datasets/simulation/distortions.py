"""The distortions of the official URGENT training simulation as pure numpy functions on 1-D float arrays.

Each takes its parameters explicitly (already drawn, as recorded in ``meta.tsv``), so the same call
reproduces an utterance exactly and each function can be tested for its measurable property.
"""

from __future__ import annotations

import functools
from math import gcd

import numpy as np
import scipy.signal
import soxr

from curator.audio import codec_roundtrip

POWER_FLOOR = 1e-10
"""Noise power floor of the SNR scaling (an all-zero noise clip stays zero instead of dividing by zero)."""

_SOXR_QUALITY = {"soxr_vhq": "VHQ", "soxr_hq": "HQ", "soxr_mq": "MQ", "soxr_lq": "LQ"}
RESAMPLE_METHODS = ("kaiser_best", "kaiser_fast", "scipy", "polyphase", *_SOXR_QUALITY)
"""The official bandwidth-limitation resamplers (librosa ``res_type``), the official draw's four first."""
MP3_QSCALE_STEPS = 10
"""LAME VBR quality runs 0 (best) .. 9 (worst); libsndfile's level is that quality / 10 (1.0 is rejected)."""
VORBIS_QSCALE_STEPS = 10
"""ffmpeg's libvorbis wrapper sets vorbis quality qscale / 10."""
OGG_QSCALE_RANGE = (-1, 10)
"""ffmpeg ogg quality runs -1 (worst) .. 10 (best)."""
WIND_WORK_PEAK = 0.9
"""The official wind mixer scales speech and wind by one factor so that the louder peaks here before ffmpeg."""
FFMPEG_KNEE = 2.82843
"""ffmpeg ``sidechaincompress`` default knee (the official graph leaves it, detection ``rms``, makeup 1 as is)."""
AMIX_INPUTS = 2
"""ffmpeg ``amix`` (normalize=1, equal weights) scales each of its two inputs by 1/2: the mix is their mean."""
PCM16_SCALE = 32768.0
"""The official wind mixer passes speech, wind and mix through 16-bit WAV files (ffmpeg reads and writes s16)."""
RESAMPY_FILTERS = {
    "kaiser_best": (50, 13, 12.9846, 0.9173473712608761),
    "kaiser_fast": (24, 9, 9.90322, 0.8682120388377784),
}
"""resampy's two filters as librosa uses them: (zero crossings, table precision bits, Kaiser beta, roll-off)."""


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``x`` to ``n`` samples."""
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)))


def non_silence_mask(x: np.ndarray, threshold: float, frame_length: int, frame_shift: int) -> np.ndarray:
    """Per-sample activity as the official simulation measures it (ESPnet ``detect_non_silence``).

    ``frame_length`` frames every ``frame_shift`` samples (the last one zero-padded); a frame is active when
    its mean power exceeds ``threshold`` x the mean over frames. Frame ``t``'s decision covers samples
    ``t*shift .. (t+1)*shift``; samples past the last frame's hop take the last decision. A signal shorter
    than one frame, or all zero, is active everywhere.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < frame_length:
        return np.ones(n, dtype=bool)
    n_add = (-(n - frame_length) % frame_shift) % frame_length
    padded = np.pad(x, (0, n_add))
    frames = np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::frame_shift]
    power = np.square(frames).mean(axis=1)
    mean = power.mean()
    if mean == 0:
        return np.ones(n, dtype=bool)
    active = np.repeat(power / mean > threshold, frame_shift)
    return np.concatenate([active, np.full(n - len(active), active[-1])])


def active_power(x: np.ndarray, threshold: float, frame_length: int, frame_shift: int) -> float:
    """Mean power of the samples that ``non_silence_mask`` marks active (pauses do not dilute the SNR)."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) == 0:
        return 0.0
    return float(np.square(x[non_silence_mask(x, threshold, frame_length, frame_shift)]).mean())


def fit_noise(noise: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``n``-sample excerpt of ``noise``, wrapped around (with a random start) when it is shorter."""
    if len(noise) == n:
        return noise
    if len(noise) > n:
        start = int(rng.integers(0, len(noise) - n))
        return noise[start : start + n]
    offset = int(rng.integers(0, n - len(noise)))
    return np.pad(noise, (offset, n - len(noise) - offset), mode="wrap")


def scale_to_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float, threshold: float, frame_length: int,
                 frame_shift: int) -> np.ndarray:
    """``noise`` scaled so that active speech power / active noise power equals ``snr_db`` (float64)."""
    ps = active_power(speech, threshold, frame_length, frame_shift)
    pn = active_power(noise, threshold, frame_length, frame_shift)
    return np.asarray(noise, dtype=np.float64) * (10 ** (-snr_db / 20) * np.sqrt(ps) / np.sqrt(max(pn, POWER_FLOOR)))


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


@functools.lru_cache(maxsize=len(RESAMPY_FILTERS))
def resampy_window(name: str) -> tuple[np.ndarray, int]:
    """resampy's half window (a Kaiser-tapered sinc, right wing) and its table size per zero crossing."""
    zeros, bits, beta, rolloff = RESAMPY_FILTERS[name]
    num_table = 2**bits
    n = num_table * zeros
    sinc = rolloff * np.sinc(rolloff * np.linspace(0, zeros, num=n + 1, endpoint=True))
    return scipy.signal.windows.kaiser(2 * n + 1, beta)[n:] * sinc, num_table


RESAMPY_CHUNK = 1 << 22
"""Output samples x taps gathered per matrix product of the band-limited interpolation (memory bound)."""


def _resampy_taps(frac: float, win: np.ndarray, delta: np.ndarray, num_table: int, step: int) -> np.ndarray:
    """One wing's weights for a fractional offset (resampy: linear interpolation in the filter table)."""
    index = frac * num_table
    offset = int(index)
    taps = offset + step * np.arange((len(win) - offset) // step)
    return win[taps] + (index - offset) * delta[taps]


def resampy_resample(x: np.ndarray, sr_in: int, sr_out: int, name: str) -> np.ndarray:
    """resampy's band-limited sinc interpolation (what librosa's ``kaiser_best``/``kaiser_fast`` call): same
    output length ``int(len * sr_out / sr_in)``, same taps. Outputs ``sr_out / gcd`` apart share their
    fractional position, so each such phase is one set of weights applied to strided windows of the
    zero-padded input (resampy's edge truncation is exactly that zero padding)."""
    x = np.asarray(x, dtype=np.float64)
    win, num_table = resampy_window(name)
    ratio = sr_out / sr_in
    if ratio < 1:
        win = ratio * win
    delta = np.diff(win, append=win[-1])
    scale = min(1.0, ratio)
    step = int(scale * num_table)
    n_out = int(len(x) * float(sr_out) / float(sr_in))
    t_out = np.arange(n_out) * (1.0 / ratio)
    whole = t_out.astype(np.int64)
    frac = scale * (t_out - whole)
    pad = len(win) // step + 2
    xpad = np.pad(x, (pad, pad))
    windows = np.lib.stride_tricks.sliding_window_view(xpad, 2 * pad)
    y = np.zeros(n_out)
    period = sr_out // gcd(sr_in, sr_out)
    for phase in range(min(period, n_out)):
        left = _resampy_taps(float(frac[phase]), win, delta, num_table, step)
        right = _resampy_taps(float(scale - frac[phase]), win, delta, num_table, step)
        kernel = np.zeros(2 * pad)  # window j starts at x[n - pad + 1]: x[n - i] at pad - 1 - i, x[n + 1 + k] at pad + k
        kernel[pad - 1 - np.arange(len(left))] = left
        kernel[pad + np.arange(len(right))] = right
        outputs = np.arange(phase, n_out, period)
        rows = max(1, RESAMPY_CHUNK // (2 * pad))
        for lo in range(0, len(outputs), rows):
            sel = outputs[lo : lo + rows]
            y[sel] = windows[whole[sel] + 1] @ kernel
    return y


def resample_as_librosa(x: np.ndarray, sr_in: int, sr_out: int, method: str) -> np.ndarray:
    """``librosa.resample(res_type=method)`` as the official simulation calls it: soxr_* (soxr), polyphase
    (scipy ``resample_poly``), scipy (FFT ``scipy.signal.resample``), kaiser_best/kaiser_fast (resampy);
    the result fixed to ``ceil(len * sr_out / sr_in)`` samples (float64)."""
    x = np.asarray(x, dtype=np.float64)
    n_out = int(np.ceil(len(x) * (float(sr_out) / sr_in)))  # librosa's rounding: 110250 * (24000/44100) -> 60001
    if method == "scipy":
        y = scipy.signal.resample(x, n_out)
    elif method == "polyphase":
        g = gcd(sr_in, sr_out)
        y = scipy.signal.resample_poly(x, sr_out // g, sr_in // g)
    elif method in _SOXR_QUALITY:
        y = soxr.resample(x, sr_in, sr_out, quality=_SOXR_QUALITY[method])
    elif method in RESAMPY_FILTERS:
        y = resampy_resample(x, sr_in, sr_out, method)
    else:
        raise ValueError(f"unknown resample method '{method}'; valid: {', '.join(RESAMPLE_METHODS)}")
    return fit_length(np.asarray(y, dtype=np.float64), n_out)


def bandwidth_limitation(x: np.ndarray, sr: int, sr_low: int, method: str) -> np.ndarray:
    """Resample down to ``sr_low`` and back to ``sr`` with the official resampler ``method``: removes
    everything above ``sr_low / 2``; same length as ``x``."""
    if sr_low >= sr:
        return np.asarray(x)
    y = resample_as_librosa(resample_as_librosa(x, sr, sr_low, method), sr_low, sr, method)
    return fit_length(y, len(x))


def clipping(x: np.ndarray, min_quantile: float, max_quantile: float) -> np.ndarray:
    """Clip to the signal's own ``min_quantile`` and ``max_quantile`` values (flat tops at those levels)."""
    lo, hi = np.quantile(x, [min_quantile, max_quantile])
    return np.clip(x, lo, hi).astype(np.float32)


def codec_level(fmt: str, qscale: int, encoder: str | None = None) -> float:
    """Map the official ffmpeg ``qscale`` onto libsndfile's 0 (best) .. 1 (worst) compression level.

    mp3: LAME VBR quality ``qscale`` = level x 10, as ffmpeg's libmp3lame (measured: 0.02 dB log-spectral
    distance from ffmpeg's output). vorbis: libvorbis quality ``qscale / 10`` = 1 - level, as ffmpeg's
    libvorbis (0.01 dB for qscale >= 0; -1 becomes quality 0). opus: ffmpeg's native encoder ignores the
    qscale; libopus is another encoder, so the level keeps the old linear map (no closer match exists).
    """
    if fmt == "mp3":
        return float(np.clip(qscale / MP3_QSCALE_STEPS, 0.0, (MP3_QSCALE_STEPS - 1) / MP3_QSCALE_STEPS))
    if encoder == "vorbis":
        return float(np.clip(1.0 - qscale / VORBIS_QSCALE_STEPS, 0.0, 1.0))
    lo, hi = OGG_QSCALE_RANGE
    return float(np.clip((hi - qscale) / (hi - lo), 0.0, 1.0))


def codec(x: np.ndarray, sr: int, fmt: str, encoder: str | None, qscale: int) -> np.ndarray:
    """mp3 / ogg-vorbis / ogg-opus round trip in memory; same length as the input."""
    return codec_roundtrip(x, sr, fmt, encoder, codec_level(fmt, qscale, encoder))


def packet_loss_indices(n_samples: int, sr: int, packet_ms: int, loss_rate: float, max_burst: int,
                        rng: np.random.Generator) -> list[int]:
    """Lost packet indices drawn as the official generator draws them.

    ``round(loss_rate x duration / packet)`` packets are lost in bursts of 1 .. ``max_burst - 1`` drawn one by
    one until the rest fits in one more burst, which takes the rest (possibly zero or negative: nothing); the
    bursts start at distinct random packets and may overlap or run past the end, so the realised loss can be
    lower than drawn. Returned sorted, without duplicates.
    """
    duration_ms = n_samples / sr * 1000
    n_packets = int(duration_ms // packet_ms)
    n_lost = int(round(loss_rate * duration_ms / packet_ms, 0))
    lengths: list[int] = []
    for _ in range(n_lost):
        lengths.append(int(rng.integers(1, max_burst)))
        if n_lost - sum(lengths) <= max_burst:
            lengths.append(n_lost - sum(lengths))
            break
    if not lengths or n_packets == 0:
        return []
    starts = rng.choice(n_packets, size=min(len(lengths), n_packets), replace=False)
    return sorted({int(s) + k for s, n in zip(starts, lengths, strict=False) for k in range(n)})


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


def ffmpeg_sidechain_gain(sidechain: np.ndarray, sr: int, threshold: float, ratio: float, attack_ms: float,
                          release_ms: float, level_sc: float, knee: float = FFMPEG_KNEE) -> np.ndarray:
    """Per-sample gain of ffmpeg's ``sidechaincompress`` (downward, rms detection, makeup 1, mix 1).

    The detector follows the squared side-chain sample with per-sample coefficients ``4000 / (ms x sr)``
    (attack when rising, release when falling); above the knee start the gain comes from the compression
    curve in the log domain with ffmpeg's Hermite soft knee. The detector recursion is sequential (one
    Python step per sample, ~0.3 s for 10 s at 48 kHz; wind rows are a few percent of a set); the gain curve
    is vectorised.
    """
    att = min(1.0, 4000.0 / (attack_ms * sr))
    rel = min(1.0, 4000.0 / (release_ms * sr))
    power = np.square(np.abs(np.asarray(sidechain, dtype=np.float64) * level_sc)).tolist()
    env = [0.0] * len(power)
    slope = 0.0
    for i, a in enumerate(power):
        slope += (a - slope) * (att if a > slope else rel)
        env[i] = slope
    lin = np.asarray(env)
    thres = np.log(threshold)
    knee_start, knee_stop = np.log(threshold / np.sqrt(knee)), np.log(threshold * np.sqrt(knee))
    compressed_stop = (knee_stop - thres) / ratio + thres
    gain = np.ones_like(lin)
    active = (lin > 0.0) & (lin > (threshold / np.sqrt(knee)) ** 2)
    slope_db = 0.5 * np.log(lin[active])
    out = (slope_db - thres) / ratio + thres
    if knee > 1.0:
        soft = slope_db < knee_stop
        width = knee_stop - knee_start
        t = (slope_db[soft] - knee_start) / width
        m0, m1 = width, width / ratio
        p0, p1 = knee_start, compressed_stop
        out[soft] = ((2 * p0 + m0 - 2 * p1 + m1) * t**3 + (-3 * p0 - 2 * m0 + 3 * p1 - m1) * t**2 + m0 * t + p0)
    gain[active] = np.exp(out - slope_db)
    return gain


def pcm16(x: np.ndarray) -> np.ndarray:
    """``x`` after a 16-bit WAV round trip (libsndfile and ffmpeg: round to nearest, clip at full scale)."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * PCM16_SCALE), -PCM16_SCALE, PCM16_SCALE - 1) / PCM16_SCALE


def wind_mix(speech: np.ndarray, wind: np.ndarray, sr: int, threshold: float, ratio: float, attack_ms: float,
             release_ms: float, sc_gain: float, clipping_threshold: float | None
             ) -> tuple[np.ndarray, np.ndarray, float]:
    """The official wind mixing of already SNR-scaled ``wind`` with ``speech``: (mix, wind, work scale).

    As the official script does: both are scaled by ``WIND_WORK_PEAK / max peak`` and written as 16-bit
    WAV; ffmpeg ducks the speech by ``sidechaincompress`` keyed on the wind and ``amix`` averages the two
    (the speech ends up at half its level); the 16-bit mix is scaled back, then clipped at
    ``clipping_threshold`` x its own minimum, then x its maximum (``None``: no clipping). The returned scale
    is the one the official script also leaves on the clean speech when no RIR was applied (it scales the
    array in place).

    Known departure: at the end of the file ffmpeg's frame scheduling sometimes drops the compressor's last
    partial 1024-sample packet (and occasionally one more), leaving only the halved wind there; which rows it
    hits is not predictable from the row, so the full-length mix is kept (measured: bench_simulation_fidelity).
    """
    speech = np.asarray(speech, dtype=np.float64)
    scale = WIND_WORK_PEAK / max(float(np.max(np.abs(speech))), float(np.max(np.abs(wind))), POWER_FLOOR)
    s16, w16 = pcm16(speech * scale), pcm16(np.asarray(wind, dtype=np.float64) * scale)
    ducked = s16 * ffmpeg_sidechain_gain(w16, sr, threshold, ratio, attack_ms, release_ms, sc_gain)
    mix = pcm16((ducked + w16) / AMIX_INPUTS) / scale
    if clipping_threshold is not None:
        mix = np.maximum(clipping_threshold * np.min(mix), mix)
        mix = np.minimum(clipping_threshold * np.max(mix), mix)
    return mix, w16 / scale, scale


def highpass_taps(sr: int, cutoff_hz: float, transition_hz: float, attenuation: float) -> np.ndarray:
    """The official high-pass FIR: ``firwin2`` with zero gain up to ``cutoff - transition`` and unit gain from
    ``cutoff``; ``attenuation x sr / (22 x transition)`` taps (at least 101, odd)."""
    nyq = 0.5 * sr
    stop = cutoff_hz - transition_hz
    if stop < 0:
        stop, transition_hz = 0.0, cutoff_hz
    numtaps = max(int((attenuation * sr) / (22 * transition_hz)), 101)
    numtaps += 1 - numtaps % 2
    return scipy.signal.firwin2(numtaps, [0, stop / nyq, min(cutoff_hz, nyq) / nyq, 1.0], [0, 0, 1, 1])


def highpass(x: np.ndarray, sr: int, cutoff_hz: float, transition_hz: float, attenuation: float) -> np.ndarray:
    """The official clean-speech high-pass: ``highpass_taps`` applied forward and backward (``filtfilt``,
    zero phase, float64)."""
    return scipy.signal.filtfilt(highpass_taps(sr, cutoff_hz, transition_hz, attenuation), 1.0,
                                 np.asarray(x, dtype=np.float64))
