"""Generated noise clips: coloured, babble, hum, transients, and wind-like gusts (numpy only).

Each generator returns a float32 clip of ``n`` samples at ``sr`` with peak ``NOISE_PEAK``; the simulator
rescales it to the drawn SNR, so only the character of the noise matters here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.signal

from curator.audio import resample

NOISE_PEAK = 0.5
NOISE_KINDS = ("coloured", "babble", "hum", "transient")
"""Ordinary noise types; wind-like noise goes to the separate wind list, as in the official data."""
COLOUR_EXPONENT = (0.0, 2.0)
"""Spectral slope 1/f^b: 0 white, 1 pink, 2 brown."""
HUM_MAINS_HZ = (50.0, 60.0)
HUM_HARMONICS = 8
HUM_HARMONIC_GAIN = (0.2, 1.0)
"""Random gain of each hum harmonic (before the 1/k roll-off)."""
HUM_WOBBLE_DEPTH = 0.1
HUM_WOBBLE_HZ = (0.1, 1.0)
TRANSIENTS_PER_SEC = (1.0, 6.0)
TRANSIENT_DECAY_SEC = (0.005, 0.08)
TRANSIENT_GAIN = (0.2, 1.0)
TRANSIENT_TAIL_DECAYS = 5
"""Each burst's kernel lasts this many decay constants."""
BACKGROUND_LEVEL = 0.02
"""Relative level of the faint broadband floor under hum and transients."""
WIND_CUTOFF_HZ = (150.0, 800.0)
WIND_GUST_HZ = (0.3, 2.0)
"""Rate of the slow gust envelope of wind noise."""
WIND_GUST_DEPTH = 1.5
"""Gust envelope = exp(depth x unit-variance low-passed noise)."""
WIND_FILTER_ORDER = 2
STD_FLOOR = 1e-9


def _peak(x: np.ndarray) -> np.ndarray:
    m = float(np.max(np.abs(x)))
    return (x * (NOISE_PEAK / m) if m > 0 else x).astype(np.float32)


def coloured(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise shaped to 1/f^b with b drawn in ``COLOUR_EXPONENT``."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1.0 / sr)
    f[0] = f[1]
    spec *= f ** (-rng.uniform(*COLOUR_EXPONENT) / 2)
    return _peak(np.fft.irfft(spec, n))


def babble(n: int, sr: int, rng: np.random.Generator, speech: Sequence[tuple[np.ndarray, int]],
           talkers: tuple[int, int]) -> np.ndarray:
    """Sum of ``talkers`` speech clips (looped, random offsets): intelligible-ish crowd noise."""
    k = int(rng.integers(talkers[0], talkers[1] + 1))
    out = np.zeros(n)
    for i in rng.choice(len(speech), size=min(k, len(speech)), replace=False):
        x, x_sr = speech[int(i)]
        y = resample(x, x_sr, sr)
        out += np.roll(np.resize(y, n), int(rng.integers(n))) / max(float(np.std(y)), STD_FLOOR)
    return _peak(out)


def hum(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz with decaying harmonics, slow amplitude wobble, a faint noise floor."""
    t = np.arange(n) / sr
    f0 = HUM_MAINS_HZ[int(rng.integers(len(HUM_MAINS_HZ)))]
    k = np.arange(1, HUM_HARMONICS + 1)
    k = k[k * f0 < sr / 2]
    amps = rng.uniform(*HUM_HARMONIC_GAIN, len(k)) / k
    phases = rng.uniform(0, 2 * np.pi, len(k))
    x = (amps[:, None] * np.sin(2 * np.pi * f0 * k[:, None] * t + phases[:, None])).sum(0)
    wobble = 1.0 + HUM_WOBBLE_DEPTH * np.sin(2 * np.pi * rng.uniform(*HUM_WOBBLE_HZ) * t)
    return _peak(x * wobble + BACKGROUND_LEVEL * rng.standard_normal(n))


def transient(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Clicks, knocks and bangs: exponentially decaying noise bursts at random times."""
    rate = rng.uniform(*TRANSIENTS_PER_SEC)
    count = max(1, int(rate * n / sr))
    impulses = np.zeros(n)
    impulses[rng.integers(0, n, count)] = rng.uniform(*TRANSIENT_GAIN, count) * rng.choice([-1.0, 1.0], count)
    decay = rng.uniform(*TRANSIENT_DECAY_SEC)
    tail = int(TRANSIENT_TAIL_DECAYS * decay * sr)
    kernel = rng.standard_normal(tail) * np.exp(-np.arange(tail) / (decay * sr))
    x = scipy.signal.oaconvolve(impulses, kernel)[:n]
    return _peak(x + BACKGROUND_LEVEL * np.max(np.abs(x)) * rng.standard_normal(n))


def wind(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Wind-like rumble: low-passed noise under a slow, positive gust envelope."""
    sos = scipy.signal.butter(WIND_FILTER_ORDER, rng.uniform(*WIND_CUTOFF_HZ), fs=sr, output="sos")
    rumble = scipy.signal.sosfilt(sos, rng.standard_normal(n))
    gust_sos = scipy.signal.butter(1, rng.uniform(*WIND_GUST_HZ), fs=sr, output="sos")
    gust = scipy.signal.sosfiltfilt(gust_sos, rng.standard_normal(n))
    envelope = np.exp(WIND_GUST_DEPTH * gust / max(float(np.std(gust)), STD_FLOOR))
    return _peak(rumble * envelope)
