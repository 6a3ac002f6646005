"""Intrusive speech metrics shared by scoring (noisy vs clean) and evaluation (enhanced vs clean).

SI-SDR is vectorised in numpy over a padded batch; ESTOI, PESQ and SDR wrap the reference implementations
(pystoi, pesq, fast-bss-eval) with URGENT's conventions: PESQ narrow-band at 8 kHz, wide-band at 16 kHz
otherwise. LSD and MCD follow the official URGENT 2025 evaluation script (``calculate_intrusive_se_metrics.py``)
step for step: the estimate is first scaled by the least-squares gain onto the reference, LSD compares
librosa STFT magnitudes (32 ms Hann window, 16 ms hop, centred), MCD compares SPTK mel-cepstra (1024-sample
Hamming frames, 256 hop, order/alpha chosen per rate, c0 included) aligned by FastDTW (radius 1).
"""

from __future__ import annotations

import warnings

import numpy as np

from curator.audio import resample

EPS = 1e-8
PESQ_WB_SR = 16000
PESQ_NB_SR = 8000
PESQ_MIN = -0.5  # lowest valid PESQ (MOS-LQO 1.02); below it the pesq package returns error codes
ESTOI_MIN_SECONDS = 0.4  # pystoi needs at least ~30 frames of 384 samples at 10 kHz after silence removal
SDR_CLAMP_DB = 50.0  # fast-bss-eval's clamp, as the official script sets it
SDR_FILTER_TAPS = 512  # fast-bss-eval's default distortion filter length
SDR_NORM_EPS = 1e-6  # fast-bss-eval's floor on a signal's norm
LSD_WIN_SECONDS = 0.032
LSD_HOP_SECONDS = 0.016
SCALE_EPS = 1e-8  # the official script's epsilon in the least-squares gain and in LSD
MCD_N_FFT = 1024
MCD_HOP = 256
MCD_SPTK_EPS = 1e-6  # pysptk.mcep's floor on the periodogram
# (mel-cepstrum order, all-pass constant alpha) per rate, the SPTK recommendation the official script uses
MCD_PARAMS = {8000: (13, 0.31), 16000: (23, 0.42), 22050: (34, 0.45), 24000: (34, 0.46), 32000: (36, 0.50),
              44100: (39, 0.53), 48000: (39, 0.55)}


def si_sdr(est: np.ndarray, ref: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    """Scale-invariant SDR in dB for 1-D signals or (batch, time) padded batches.

    ``lengths`` masks padding per row. Both signals are made zero-mean over their valid samples first.
    """
    est = np.atleast_2d(np.asarray(est, dtype=np.float64))
    ref = np.atleast_2d(np.asarray(ref, dtype=np.float64))
    if est.shape != ref.shape:
        raise ValueError(f"si_sdr: shapes differ {est.shape} vs {ref.shape}")
    n = est.shape[1]
    if lengths is None:
        mask = np.ones_like(est, dtype=bool)
        counts = np.full(est.shape[0], n, dtype=np.float64)
    else:
        lengths = np.asarray(lengths)
        mask = np.arange(n)[None, :] < lengths[:, None]
        counts = np.maximum(lengths.astype(np.float64), 1.0)
    est = np.where(mask, est - (est * mask).sum(1, keepdims=True) / counts[:, None], 0.0)
    ref = np.where(mask, ref - (ref * mask).sum(1, keepdims=True) / counts[:, None], 0.0)
    scale = (est * ref).sum(1, keepdims=True) / ((ref * ref).sum(1, keepdims=True) + EPS)
    target = scale * ref
    noise = est - target
    out = 10.0 * np.log10(((target * target).sum(1) + EPS) / ((noise * noise).sum(1) + EPS))
    return out if out.size > 1 else out.reshape(())


def snr(noisy: np.ndarray, clean: np.ndarray) -> float:
    """SNR in dB of ``noisy`` against ``clean`` treating ``noisy - clean`` as the noise."""
    noise = np.asarray(noisy, dtype=np.float64) - np.asarray(clean, dtype=np.float64)
    return float(10.0 * np.log10((np.sum(np.square(clean, dtype=np.float64)) + EPS) / (np.sum(noise**2) + EPS)))


def _same_length(est: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals as float32 cut to the shorter one (the official scripts assert equal shapes)."""
    n = min(len(est), len(ref))
    return np.asarray(est[:n], np.float32), np.asarray(ref[:n], np.float32)


PYSTOI_NOISE_SEED = 0
"""Seed of the tiny noise pystoi's extended mode adds to normalised segments (see :func:`estoi`)."""


def estoi(est: np.ndarray, ref: np.ndarray, sr: int, min_seconds: float = ESTOI_MIN_SECONDS) -> float:
    """Extended STOI (pystoi, which resamples to 10 kHz itself).

    Signals shorter than ``min_seconds`` give NaN. With ``min_seconds=0`` this is the official behaviour:
    pystoi's own 1e-5 when too few frames survive its silence removal; NaN only where pystoi raises (shorter
    than one frame), where the official script would stop.
    """
    from pystoi import stoi

    est, ref = _same_length(est, ref)
    if len(ref) < min_seconds * sr:
        return float("nan")
    # extended STOI adds EPS x np.random.standard_normal to every normalised segment from numpy's unseeded
    # global RNG: negligible on speech, but a segment that is all zeros (packet loss) is then random noise,
    # and the score moves by ~1e-3 from call to call. A fixed seed for the call (the caller's state restored)
    # makes it a function of its inputs.
    state = np.random.get_state()  # noqa: NPY002 (pystoi draws from the legacy global RNG)
    np.random.seed(PYSTOI_NOISE_SEED)  # noqa: NPY002
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # pystoi warns before returning 1e-5
            return float(stoi(ref, est, sr, extended=True))
    except (ValueError, IndexError):  # numpy's AxisError is both
        return float("nan")
    finally:
        np.random.set_state(state)  # noqa: NPY002


def pesq_score(est: np.ndarray, ref: np.ndarray, sr: int, official_errors: bool = False) -> float:
    """PESQ as URGENT computes it: NB at 8 kHz input, WB on 16 kHz (soxr HQ resampled) otherwise.

    A silent input or "no utterances detected" gives NaN, never a crash. Other PESQ failures (a buffer
    shorter than ~0.25 s) give NaN too, unless ``official_errors``: then the error code comes back as the
    score (-6.0 for a too-short buffer), as the official script's ``on_error=RETURN_VALUES`` lets through
    into its means. Rates between 8 and 16 kHz, which the official script refuses, are resampled to 16 kHz.
    """
    from pesq import PesqError, pesq

    est, ref = _same_length(est, ref)
    mode, target = ("nb", PESQ_NB_SR) if sr == PESQ_NB_SR else ("wb", PESQ_WB_SR)
    if not np.any(ref) or not np.any(est):
        return float("nan")
    r = resample(ref, sr, target)
    e = resample(est, sr, target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = float(pesq(target, r, e, mode, on_error=PesqError.RETURN_VALUES))
    except ValueError:
        return float("nan")
    if value == PesqError.NO_UTTERANCES_DETECTED or (value < PESQ_MIN and not official_errors):
        return float("nan")
    return value


def sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """BSS-eval SDR in dB of one source, as ``fast_bss_eval.bss_eval_sources`` computes it for URGENT.

    Both signals are scaled to unit norm; the estimate is projected onto the span of the reference delayed by
    0..511 samples (a 512-tap distortion filter from the Toeplitz normal equations, auto- and cross-correlations
    by FFT); SDR = 10 log10(c / (1 - c)) with c the squared cosine of that projection, clamped to +-50 dB.
    Everything runs in float32 as in fast-bss-eval on the official script's float32 audio (scipy.fft keeps
    single precision): the normal equations are ill-conditioned for band-limited references, and a float64
    solve differs from the official values by up to 0.2 dB at 32-48 kHz. Own numpy code: fast-bss-eval 0.1.4's
    numpy backend fails under numpy 2.
    """
    from scipy import fft
    from scipy.linalg import toeplitz

    est, ref = _same_length(est, ref)
    # sqrt of a pairwise sum, not BLAS dot: the rounding must match, the system amplifies it
    est = est / max(np.sqrt(np.sum(est * est)), np.float32(SDR_NORM_EPS))
    ref = ref / max(np.sqrt(np.sum(ref * ref)), np.float32(SDR_NORM_EPS))
    n_fft = 1 << int(np.ceil(np.log2(2 * len(ref) - 1)))
    ref_f = fft.rfft(ref, n_fft)
    acf = fft.irfft(ref_f * ref_f.conj(), n_fft)[:SDR_FILTER_TAPS]
    xcorr = fft.irfft(ref_f.conj() * fft.rfft(est, n_fft), n_fft)[:SDR_FILTER_TAPS]
    coh = float(xcorr @ np.linalg.solve(toeplitz(acf), xcorr))
    e = 10.0 ** (-SDR_CLAMP_DB / 10.0)
    coh = min(max(coh, e / (1 + e)), 1 / (1 + e))
    return float(10.0 * np.log10(coh / (1.0 - coh)))


def _ls_scaled(est: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """``est`` times the least-squares gain onto ``ref`` (float32 sums, as the official script computes it)."""
    return est * (np.sum(ref * est) / (np.sum(est * est) + SCALE_EPS))


def lsd(est: np.ndarray, ref: np.ndarray, sr: int) -> float:
    """Log-spectral distance (lower is better): RMS over frequency of the log power ratio, mean over frames."""
    import librosa

    est, ref = _same_length(est, ref)
    est = _ls_scaled(est, ref)
    n_fft, hop = int(sr * LSD_WIN_SECONDS), int(sr * LSD_HOP_SECONDS)
    ref_mag = np.abs(librosa.stft(ref, n_fft=n_fft, hop_length=hop))
    est_mag = np.abs(librosa.stft(est, n_fft=n_fft, hop_length=hop))
    log_ratio = np.log(ref_mag**2 / (est_mag + SCALE_EPS) ** 2 + SCALE_EPS)
    return float(np.mean(np.sqrt(np.mean(log_ratio**2, axis=0))))


def mel_cepstrum(x: np.ndarray, sr: int) -> np.ndarray:
    """``(frames, order + 1)`` SPTK mel-cepstra of 1024-sample Hamming frames (hop 256, no padding)."""
    import pysptk

    order, alpha = MCD_PARAMS[sr]
    n_frames = (len(x) - MCD_N_FFT) // MCD_HOP + 1
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(x, np.float64), MCD_N_FFT)[::MCD_HOP][:n_frames]
    return pysptk.mcep(frames * pysptk.hamming(MCD_N_FFT), order, alpha, eps=MCD_SPTK_EPS, etype=1)


def mcd(est: np.ndarray, ref: np.ndarray, sr: int) -> float:
    """Mel-cepstral distortion in dB (lower is better) along the FastDTW path, as URGENT 2025 computes it.

    Rates outside the seven URGENT rates have no SPTK setting and raise ``ValueError``; a signal shorter than
    one frame gives NaN (the official script stops there).
    """
    from fastdtw import fastdtw

    if sr not in MCD_PARAMS:
        raise ValueError(f"mcd: no mel-cepstrum setting for {sr} Hz; supported: {sorted(MCD_PARAMS)}")
    est, ref = _same_length(est, ref)
    if len(ref) < MCD_N_FFT:
        return float("nan")
    # the official script passes the reference first; FastDTW breaks ties by argument order
    first, second = mel_cepstrum(ref, sr), mel_cepstrum(_ls_scaled(est, ref), sr)
    _, path = fastdtw(first, second, dist=2)  # dist=2: the Euclidean norm, in fastdtw's compiled loop
    i, j = np.asarray(path).T
    diff = np.sum((first[i] - second[j]) ** 2, axis=1)
    return float(np.mean(10.0 / np.log(10.0) * np.sqrt(2.0 * diff)))


def snr_batch(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """:func:`snr` along the last axis of ``(batch, time)`` arrays; zero padding adds nothing to either sum."""
    noisy = np.asarray(noisy, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    noise = noisy - clean
    return 10.0 * np.log10((np.sum(clean * clean, axis=-1) + EPS) / (np.sum(noise * noise, axis=-1) + EPS))
