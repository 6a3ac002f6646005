"""One test per distortion, each checking the measurable property the simulator promises."""

from __future__ import annotations

import numpy as np
import pytest
from ds_helpers import speech_like, write_wav

from curator.datasets.kaldi import SourceEntry
from curator.datasets.simulation import distortions as D
from curator.datasets.simulation.render import apply_augmentation, render_row
from curator.datasets.simulation.sources import Sources

SR = 16000


def _spectrum_db_above(x: np.ndarray, sr: int, cutoff: float) -> float:
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float(10 * np.log10(spec[f > cutoff].sum() / spec.sum()))


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 7.3, 20.0])
def test_noise_is_scaled_to_the_drawn_snr_within_0p1_db(snr_db):
    rng = np.random.default_rng(1)
    speech = speech_like(SR, 3.0)
    noise = D.fit_noise(rng.standard_normal(SR).astype(np.float32) * (1 + np.arange(SR) / SR), len(speech), rng)
    scaled = D.scale_to_snr(speech, noise, snr_db, SR, 0.02, 0.01)
    achieved = 10 * np.log10(D.active_power(speech, SR, 0.02, 0.01) / D.active_power(scaled, SR, 0.02, 0.01))
    assert abs(achieved - snr_db) < 0.1
    assert len(scaled) == len(speech)


def test_clipping_gives_flat_tops_at_the_chosen_quantiles():
    x = speech_like(SR, 2.0)
    lo_q, hi_q = 0.05, 0.9
    y = D.clipping(x, lo_q, hi_q)
    lo, hi = np.quantile(x, [lo_q, hi_q])
    assert y.max() == pytest.approx(hi, abs=1e-6) and y.min() == pytest.approx(lo, abs=1e-6)
    assert np.mean(np.isclose(y, hi, atol=1e-7)) == pytest.approx(1 - hi_q, abs=0.01)
    assert np.mean(np.isclose(y, lo, atol=1e-7)) == pytest.approx(lo_q, abs=0.01)
    inside = (x > lo) & (x < hi)
    np.testing.assert_array_equal(y[inside], x[inside])


@pytest.mark.parametrize("sr", [8000, 22050, 44100])
def test_packet_loss_zeroes_20ms_packets_at_the_rate_and_burst_lengths(sr):
    rng = np.random.default_rng(3)
    n = int(sr * 4.0)
    x = (0.5 + rng.random(n)).astype(np.float32)  # never zero, so every zero is a lost sample
    rate, max_burst, packet_ms = 0.2, 10, 20
    idx = D.packet_loss_indices(n, sr, packet_ms, rate, max_burst, rng)
    n_packets = n * 1000 // (packet_ms * sr)
    assert len(idx) == round(rate * n_packets)
    runs = np.split(np.array(idx), np.flatnonzero(np.diff(idx) != 1) + 1)
    assert all(1 <= len(r) <= max_burst - 1 for r in runs)
    y = D.packet_loss(x, sr, idx, packet_ms)
    packet = packet_ms * sr // 1000
    lost = np.zeros(n, dtype=bool)
    for k in idx:
        lost[k * packet : (k + 1) * packet] = True
    assert np.all(y[lost] == 0) and np.all(y[~lost] == x[~lost])
    assert np.mean(y == 0) == pytest.approx(len(idx) * packet / n)


@pytest.mark.parametrize("method", ["soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "polyphase"])
def test_bandwidth_limitation_removes_energy_above_the_lower_nyquist(method):
    sr, sr_low = 48000, 16000
    x = np.random.default_rng(4).standard_normal(sr).astype(np.float32)
    assert _spectrum_db_above(x, sr, sr_low / 2 * 1.05) > -3
    y = D.bandwidth_limitation(x, sr, sr_low, method)
    assert len(y) == len(x)
    assert _spectrum_db_above(y, sr, sr_low / 2 * 1.05) < -25  # from -1.8 dB (white noise)
    assert _spectrum_db_above(y, sr, 1000) > -10  # the passband survives


@pytest.mark.parametrize(("sr", "aug"), [(16000, "codec(format=mp3,encoder=None,qscale=7)"),
                                         (44100, "codec(format=mp3,encoder=None,qscale=9)"),
                                         (22050, "codec(format=ogg,encoder=vorbis,qscale=-1)"),
                                         (48000, "codec(format=ogg,encoder=opus,qscale=0)"),
                                         (44100, "codec(format=ogg,encoder=opus,qscale=3)")])
def test_codecs_change_the_signal_but_keep_its_length(sr, aug):
    x = speech_like(sr, 1.5)
    y = apply_augmentation(x, aug, sr)
    assert y.shape == x.shape
    assert np.max(np.abs(y - x)) > 1e-3
    assert np.corrcoef(x, y)[0, 1] > 0.5  # still the same signal, sample-aligned


def test_reverberant_target_uses_only_the_early_rir():
    sr = SR
    rir = np.zeros(sr, dtype=np.float32)
    start = 40
    rir[start - 5] = 0.05  # below the 10 % start level: not the direct path
    rir[start] = 1.0
    rir[start + int(0.03 * sr)] = 0.5  # early reflection (30 ms)
    rir[start + int(0.2 * sr)] = 0.4  # late reflection (200 ms)
    early = D.early_rir(rir, sr, 0.05, 0.1)
    assert D.rir_start(rir, 0.1) == start
    np.testing.assert_array_equal(early[: start + int(0.05 * sr)], rir[: start + int(0.05 * sr)])
    assert not early[start + int(0.05 * sr) :].any()
    x = np.zeros(sr, dtype=np.float32)
    x[100] = 1.0
    target, noisy = D.reverberate(x, early), D.reverberate(x, rir)
    late = 100 + start + int(0.2 * sr)
    assert target[late] == pytest.approx(0.0, abs=1e-6) and noisy[late] == pytest.approx(0.4, abs=1e-6)
    assert target[100 + start] == pytest.approx(1.0, abs=1e-6)


def test_wind_mix_ducks_speech_under_gusts_and_clips_at_the_threshold():
    sr = SR
    speech = np.full(sr, 0.5, dtype=np.float32)
    gust = np.zeros(sr, dtype=np.float32)
    gust[sr // 2 :] = 0.9
    ducked = D.sidechain_compress(speech, gust, sr, threshold=0.1, ratio=10.0, attack_ms=5.0, release_ms=50.0)
    assert ducked[: sr // 4].mean() == pytest.approx(0.5, abs=1e-3)
    assert ducked[-sr // 4 :].mean() < 0.2
    mix = D.wind_mix(speech, gust, sr, 0.1, 10.0, 5.0, 50.0, 1.0, True, 0.9)
    unclipped = D.wind_mix(speech, gust, sr, 0.1, 10.0, 5.0, 50.0, 1.0, False, 0.9)
    assert mix.max() == pytest.approx(0.9 * unclipped.max(), rel=1e-5)


def test_highpass_removes_rumble_below_the_cutoff():
    t = np.arange(SR * 2) / SR
    x = (np.sin(2 * np.pi * 20 * t) + np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    y = D.highpass(x, SR, 70.0, 4)
    spec = np.abs(np.fft.rfft(y))
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert spec[np.argmin(np.abs(f - 20))] < 0.02 * spec[np.argmin(np.abs(f - 1000))]


def _sources(tmp_path, speech: np.ndarray, noise: np.ndarray, rir: np.ndarray, sr: int) -> Sources:
    for name, x in (("s", speech), ("n", noise), ("r", rir)):
        write_wav(tmp_path / f"{name}.wav", x, sr, subtype="FLOAT")
    return Sources(root=tmp_path, speech={"s": SourceEntry("s", sr, "s.wav")},
                   noise={"n": SourceEntry("n", sr, "n.wav")}, wind={}, rir={"r": SourceEntry("r", sr, "r.wav")},
                   lengths={"s": len(speech)})


def test_render_order_snr_early_target_and_peak_normalisation(tmp_path, sim):
    speech = speech_like(SR, 2.0)
    noise = np.random.default_rng(5).standard_normal(SR * 3).astype(np.float32) * 0.1
    rir = np.zeros(SR // 2, np.float32)
    rir[20], rir[20 + int(0.02 * SR)], rir[20 + int(0.3 * SR)] = 1.0, 0.5, 0.3
    src = _sources(tmp_path, speech, noise, rir, SR)
    row = {"id": "fileid_1", "speech_uid": "s", "noise_uid": "n", "rir_uid": "r", "snr_dB": "3.5",
           "augmentation": "none", "fs": str(SR), "length": str(len(speech))}
    noisy, target = render_row(row, src, sim)
    assert noisy.shape == target.shape == speech.shape
    assert max(np.abs(noisy).max(), np.abs(target).max()) <= sim.peak_norm + 1e-6
    early = D.reverberate(speech, D.early_rir(rir, SR, sim.early_rir_sec, sim.rir_start_level))
    scale = float(np.dot(target, early) / np.dot(early, early))
    np.testing.assert_allclose(target, scale * early, atol=1e-5)  # the target holds no late reverberation
    reverberant = D.reverberate(speech, rir) * scale
    residual = noisy - reverberant  # the scaled noise
    snr = 10 * np.log10(D.active_power(reverberant, SR, sim.active_frame_sec, sim.active_threshold)
                        / D.active_power(residual, SR, sim.active_frame_sec, sim.active_threshold))
    assert snr == pytest.approx(3.5, abs=0.1)  # SNR is relative to the reverberant speech, as officially


def test_render_is_reproducible_from_the_meta_row_alone(tmp_path, sim):
    speech = speech_like(SR, 1.0)
    src = _sources(tmp_path, speech, np.random.default_rng(6).standard_normal(SR * 3).astype(np.float32),
                   np.eye(1, 400, 10, dtype=np.float32)[0], SR)
    row = {"id": "fileid_7", "speech_uid": "s", "noise_uid": "n", "rir_uid": "none", "snr_dB": "0.0",
           "augmentation": "codec(format=ogg,encoder=vorbis,qscale=2)/packet_loss(packet_loss_indices=[3, 4],"
                           "packet_duration_ms=20)", "fs": str(SR), "length": str(len(speech))}
    a, b = render_row(row, src, sim), render_row(dict(row), src, sim)
    np.testing.assert_array_equal(a[0], b[0])
    assert not a[0][3 * 320 : 5 * 320].any()  # packet loss after the codec: those packets are exactly zero
