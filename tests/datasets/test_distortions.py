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
    scaled = D.scale_to_snr(speech, noise, snr_db, 0.01, 1024, 512)
    achieved = 10 * np.log10(D.active_power(speech, 0.01, 1024, 512) / D.active_power(scaled, 0.01, 1024, 512))
    assert abs(achieved - snr_db) < 0.1
    assert len(scaled) == len(speech)


def test_activity_is_espnet_detect_non_silence_1024_frames_512_hop():
    """Frame t covers samples 512t .. 512t+1024 and decides samples 512t .. 512t+512; the tail takes the last."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(10 * 512 + 300)
    x[2048:4096] = 0.0  # frames 4, 5, 6 are silent; frames 3 and 7 are half silent (still active)
    mask = D.non_silence_mask(x, 0.01, 1024, 512)
    expected = np.ones(len(x), dtype=bool)
    expected[4 * 512 : 7 * 512] = False
    np.testing.assert_array_equal(mask, expected)
    assert D.active_power(x, 0.01, 1024, 512) == pytest.approx(float(np.mean(x[expected] ** 2)), rel=1e-12)
    # a quiet stretch counts when its frame power is above 1 % of the mean frame power, not below
    y = rng.standard_normal(40 * 512)
    y[8192:12288] *= np.sqrt(0.005)
    assert not D.non_silence_mask(y, 0.01, 1024, 512)[9000:11000].any()
    y[8192:12288] *= np.sqrt(4.0)  # now 0.02 of the loud power
    assert D.non_silence_mask(y, 0.01, 1024, 512)[9000:11000].all()
    # shorter than a frame, or all zero: everything is active
    assert D.non_silence_mask(x[:1000], 0.01, 1024, 512).all()
    assert D.non_silence_mask(np.zeros(5000), 0.01, 1024, 512).all()


def test_noise_offset_is_seeded_by_the_ids_numeric_suffix():
    """The official renderer seeds the excerpt generator with int(id.split('_')[-1])."""
    from curator.datasets.simulation.render import row_rng

    noise = np.arange(10_000, dtype=np.float64)
    for uid in ("fileid_12", "train_fileid_12"):
        start = int(np.random.default_rng(12).integers(0, 10_000 - 3000))
        np.testing.assert_array_equal(D.fit_noise(noise, 3000, row_rng(7, uid)), noise[start : start + 3000])
    a = D.fit_noise(noise, 3000, row_rng(7, "utt_a"))
    np.testing.assert_array_equal(a, D.fit_noise(noise, 3000, row_rng(7, "utt_a")))  # fallback: seeded hash
    assert not np.array_equal(a, D.fit_noise(noise, 3000, row_rng(8, "utt_a")))
    # a noise shorter than the speech is wrapped around a seeded offset, as the official renderer pads it
    # (np.pad mode "wrap"): no silent stretch, and every sample at its cyclic position
    short = np.arange(1, 1001, dtype=np.float64)
    offset = int(np.random.default_rng(12).integers(0, 3000 - 1000))
    long = D.fit_noise(short, 3000, row_rng(7, "fileid_12"))
    np.testing.assert_array_equal(long, short[(np.arange(3000) - offset) % 1000])


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
def test_packet_loss_draw_is_the_official_one_and_zeroes_20ms_packets(sr):
    rng = np.random.default_rng(3)
    n = int(sr * 4.0)
    x = (0.5 + rng.random(n)).astype(np.float32)  # never zero, so every zero is a lost sample
    rate, max_burst, packet_ms = 0.2, 10, 20
    idx = D.packet_loss_indices(n, sr, packet_ms, rate, max_burst, rng)
    n_lost = round(rate * n / sr * 1000 / packet_ms)
    assert idx == sorted(set(idx)) and 0 < len(idx) <= n_lost  # bursts may overlap: at most the drawn count
    runs = np.split(np.array(idx), np.flatnonzero(np.diff(idx) != 1) + 1)
    assert all(len(r) >= 1 for r in runs)
    # the official draw, replayed: bursts of randint(1, max_burst) until the rest fits, distinct starts
    replay = np.random.default_rng(3)
    replay.random(n)
    lengths = []
    for _ in range(n_lost):
        lengths.append(int(replay.integers(1, max_burst)))
        if n_lost - sum(lengths) <= max_burst:
            lengths.append(n_lost - sum(lengths))
            break
    starts = replay.choice(int(n / sr * 1000 // packet_ms), size=len(lengths), replace=False)
    assert idx == sorted({int(s) + k for s, m in zip(starts, lengths, strict=True) for k in range(m)})
    y = D.packet_loss(x, sr, idx, packet_ms)
    packet = packet_ms * sr // 1000
    lost = np.zeros(n, dtype=bool)
    for k in idx:
        lost[k * packet : (k + 1) * packet] = True
    assert np.all(y[lost] == 0) and np.all(y[~lost] == x[~lost])


@pytest.mark.parametrize("method", D.RESAMPLE_METHODS)
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


def test_ffmpeg_sidechain_gain_attack_and_steady_state():
    """rms detection: the detector follows the squared side-chain with coefficient 4000/(ms*sr); above the
    knee the gain is (level/threshold)^(1/ratio - 1)."""
    sr, thr, ratio = SR, 0.1, 4.0
    gust = np.zeros(sr)
    gust[sr // 2 :] = 0.8
    gain = D.ffmpeg_sidechain_gain(gust, sr, thr, ratio, attack_ms=5.0, release_ms=50.0, level_sc=1.0)
    assert np.all(gain[: sr // 2] == 1.0)
    assert gain[-1] == pytest.approx((0.8 / thr) ** (1 / ratio - 1), rel=1e-6)
    att = 4000 / (5.0 * sr)
    k = 10  # detector power after k samples of the gust
    level = np.sqrt(0.64 * (1 - (1 - att) ** k))
    assert level > thr * np.sqrt(D.FFMPEG_KNEE)  # past the soft knee: the plain curve applies
    assert gain[sr // 2 + k - 1] == pytest.approx((level / thr) ** (1 / ratio - 1), rel=1e-6)
    quiet = D.ffmpeg_sidechain_gain(gust * 0.01, sr, thr, ratio, 5.0, 50.0, 1.0)  # below the knee: untouched
    assert np.all(quiet == 1.0)


def test_wind_mix_level_structure_is_the_official_ffmpeg_graph():
    """amix averages its two inputs (speech at half level), the work scale is 0.9 / louder peak, the mix is
    clipped at threshold x its own min and max."""
    sr = SR
    t = np.arange(sr) / sr
    speech = 0.5 * np.sin(2 * np.pi * 200 * t)
    wind = 0.001 * np.random.default_rng(1).standard_normal(sr)  # far below the compressor threshold
    mix, w, scale = D.wind_mix(speech, wind, sr, 0.1, 10.0, 5.0, 50.0, 1.0, None)
    assert scale == pytest.approx(0.9 / 0.5)
    np.testing.assert_allclose(mix, (speech + wind) / 2, atol=2 / 32768 / scale)
    np.testing.assert_allclose(w, wind, atol=1 / 32768 / scale)
    clipped, _, _ = D.wind_mix(speech, wind, sr, 0.1, 10.0, 5.0, 50.0, 1.0, 0.9)
    assert clipped.max() == pytest.approx(0.9 * mix.max()) and clipped.min() == pytest.approx(0.9 * mix.min())
    gust = np.concatenate([wind[: sr // 2], np.full(sr // 2, 0.4)])
    ducked, _, _ = D.wind_mix(speech, gust, sr, 0.1, 10.0, 5.0, 50.0, 1.0, None)
    assert np.abs(ducked[-sr // 4 :] - 0.2).max() < 0.5 * 0.5 / 2  # speech ducked under the gust


def test_render_wind_row_without_rir_leaves_the_clean_at_the_work_scale(tmp_path, sim):
    """Official: the dry clean is scaled in place by the wind mixer, so in the output it is 0.9/peak x the
    speech while the speech inside the mix is at half level (about -11 dB for a 0.5 peak)."""
    t = np.arange(SR * 2) / SR
    speech = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    wind = (0.01 * np.random.default_rng(3).standard_normal(SR * 3)).astype(np.float32)
    src = _sources(tmp_path, speech, wind, np.eye(1, 400, 10, dtype=np.float32)[0], SR)
    src.wind, src.noise = {"wind_noise_1": SourceEntry("wind_noise_1", SR, "n.wav")}, {}
    row = {"id": "fileid_3", "speech_uid": "s", "noise_uid": "wind_noise_1", "rir_uid": "none", "snr_dB": "30.0",
           "augmentation": "wind_noise(threshold=0.3,ratio=2.0,attack=10.0,release=10.0,sc_gain=1.0,"
                           "clipping=False,clipping_threshold=1.0)", "fs": str(SR), "length": str(len(speech))}
    noisy, target = render_row(row, src, sim)
    gain = float(np.dot(noisy, target) / np.dot(target, target))  # speech level in the mix vs the clean
    hp = D.highpass(speech, SR, sim.highpass_hz, sim.highpass_transition_hz, sim.highpass_attenuation)
    work = 0.9 / max(np.abs(hp).max(), 1e-9)
    assert 20 * np.log10(gain) == pytest.approx(20 * np.log10(0.5 / work), abs=0.1)  # about -11.1 dB


def test_highpass_is_the_official_firwin2_fir_run_forward_and_backward():
    taps = D.highpass_taps(48000, 70.0, 15.0, 10.0)
    assert len(taps) == 1455 and np.allclose(taps, taps[::-1])  # int(10*48000/(22*15)) = 1454 -> odd
    assert len(D.highpass_taps(8000, 70.0, 15.0, 10.0)) == 243
    t = np.arange(SR * 2) / SR
    x = np.sin(2 * np.pi * 20 * t) + np.sin(2 * np.pi * 1000 * t)
    y = D.highpass(x, SR, 70.0, 15.0, 10.0)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    f = np.fft.rfftfreq(len(y), 1 / SR)
    assert spec[np.argmin(np.abs(f - 20))] < 0.02 * spec[np.argmin(np.abs(f - 1000))]
    mid = slice(SR // 2, -SR // 2)  # zero phase: the 1 kHz tone passes in place
    np.testing.assert_allclose(y[mid], np.sin(2 * np.pi * 1000 * t)[mid], atol=0.02)


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
    dry = D.highpass(speech, SR, sim.highpass_hz, sim.highpass_transition_hz, sim.highpass_attenuation)
    early = D.reverberate(dry, D.early_rir(rir, SR, sim.early_rir_sec, sim.rir_start_level))
    scale = float(np.dot(target, early) / np.dot(early, early))
    np.testing.assert_allclose(target, scale * early, atol=1e-5)  # the target holds no late reverberation
    reverberant = D.reverberate(dry, rir) * scale
    residual = noisy - reverberant  # the scaled noise
    args = (sim.active_threshold, sim.active_frame_length, sim.active_frame_shift)
    snr = 10 * np.log10(D.active_power(reverberant, *args) / D.active_power(residual, *args))
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


def test_wind_clipping_flag_is_always_true_as_the_official_parses_it(tmp_path, sim):
    """``bool("False")`` is True in the official renderer: ``clip_always`` keeps that, false honours the flag."""
    import dataclasses

    t = np.arange(SR) / SR
    speech = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    src = _sources(tmp_path, speech, (0.05 * np.random.default_rng(4).standard_normal(SR * 2)).astype(np.float32),
                   np.eye(1, 400, 10, dtype=np.float32)[0], SR)
    src.wind, src.noise = {"wind_noise_1": SourceEntry("wind_noise_1", SR, "n.wav")}, {}
    row = {"id": "fileid_5", "speech_uid": "s", "noise_uid": "wind_noise_1", "rir_uid": "r", "snr_dB": "10.0",
           "augmentation": "wind_noise(threshold=0.3,ratio=2.0,attack=10.0,release=10.0,sc_gain=1.0,"
                           "clipping=False,clipping_threshold=0.6)", "fs": str(SR), "length": str(SR)}
    clipped, _ = render_row(row, src, sim)
    honoured = dataclasses.replace(sim, wind=dataclasses.replace(sim.wind, clip_always=False))
    free, _ = render_row(row, src, honoured)
    assert np.sum(clipped == clipped.max()) > 50  # flat tops at 0.6 x the mix's maximum
    assert np.sum(free == free.max()) < 5


def test_resampler_lengths_follow_librosa_rounding():
    """librosa: ceil(len x float(sr_out) / sr_in), so 110250 samples at 44.1 kHz make 60001 at 24 kHz."""
    assert len(D.resample_as_librosa(np.zeros(110250), 44100, 24000, "scipy")) == 60001
    assert len(D.resample_as_librosa(np.zeros(110250), 44100, 24000, "polyphase")) == 60001
    assert len(D.resampy_resample(np.zeros(1000), 48000, 16000, "kaiser_fast")) == 333  # resampy: int(len x ratio)
    t = np.arange(4410) / 44100
    y = D.resample_as_librosa(np.sin(2 * np.pi * 1000 * t), 44100, 88200, "kaiser_best")
    t2 = np.arange(len(y)) / 88200  # a 1 kHz tone is deep in the passband: the interpolation is the tone
    np.testing.assert_allclose(y[400:-400], np.sin(2 * np.pi * 1000 * t2)[400:-400], atol=2e-3)


def test_codec_levels_follow_the_ffmpeg_quality_scales():
    assert [D.codec_level("mp3", q) for q in (1, 5, 9)] == [0.1, 0.5, 0.9]
    assert [D.codec_level("ogg", q, "vorbis") for q in (-1, 0, 5, 10)] == [1.0, 1.0, 0.5, 0.0]
