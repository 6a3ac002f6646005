"""The simulation draws follow the official training configuration (checked on many in-memory rows)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from ds_helpers import PARAMS

from curator.config import load_params, parse
from curator.datasets.kaldi import SourceEntry
from curator.datasets.labels import primary_distortion, split_augmentations
from curator.datasets.params import SimulationParams
from curator.datasets.simulation.plan import PlanError, UnusedFirst, plan_simulation
from curator.datasets.simulation.sources import Sources

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


def fake_sources(n: int = 3000, rir: bool = True) -> Sources:
    speech = {f"s{i:05d}": SourceEntry(f"s{i:05d}", RATES[i % len(RATES)], f"s{i}.flac") for i in range(n)}
    return Sources(root=Path("."), speech=speech,
                   noise={f"n{i}": SourceEntry(f"n{i}", 48000, f"n{i}.flac") for i in range(5)},
                   wind={f"wind_noise_{i}": SourceEntry(f"wind_noise_{i}", 48000, f"w{i}.flac") for i in range(2)},
                   rir={f"r{i}": SourceEntry(f"r{i}", 48000, f"r{i}.flac") for i in range(3)} if rir else {},
                   lengths={u: 3 * e.fs for u, e in speech.items()})


@pytest.fixture(scope="module")
def rows():
    sim = parse(SimulationParams, load_params(PARAMS)["simulation"], "simulation")
    return plan_simulation(fake_sources(), sim, "sim", n_speech_free=100), sim


def test_probabilities_match_the_official_configuration(rows):
    rows, sim = rows
    speech = [r for r in rows if r["speech_uid"] != "none"]
    n = len(speech)
    wind = [r for r in speech if r["noise_uid"].startswith("wind_noise")]
    assert len(wind) / n == pytest.approx(sim.prob_wind_noise, abs=0.015)
    assert sum(r["rir_uid"] != "none" for r in speech) / n == pytest.approx(sim.prob_reverberation, abs=0.03)
    counts = Counter(len([a for a in split_augmentations(r["augmentation"]) if not a.startswith("wind")])
                     for r in speech)
    for k, p in sim.augmentation_count_probs().items():
        assert counts[k] / n == pytest.approx(p, abs=0.03)
    assert not any(a.startswith("clipping(") for r in wind for a in split_augmentations(r["augmentation"]))
    snr = np.array([float(r["snr_dB"]) for r in speech if r not in wind])
    assert snr.min() >= sim.snr_db[0] and snr.max() <= sim.snr_db[1]
    wsnr = np.array([float(r["snr_dB"]) for r in wind])
    assert wsnr.min() >= sim.wind_snr_db[0] and wsnr.max() <= sim.wind_snr_db[1]


def test_augmentation_strings_are_official_and_bandwidth_goes_lower(rows):
    rows, sim = rows
    patterns = [r"bandwidth_limitation-(kaiser_best|kaiser_fast|scipy|polyphase|none)->\d+",
                r"clipping\(min=[0-9.e-]+,max=[0-9.e-]+\)",
                r"codec\(format=(mp3,encoder=None|ogg,encoder=(vorbis|opus)),qscale=-?\d+\)",
                r"packet_loss\(packet_loss_indices=\[[0-9, ]*\],packet_duration_ms=20\)",
                r"wind_noise\(threshold=.*,ratio=.*,attack=.*,release=.*,sc_gain=.*,clipping=(True|False),"
                r"clipping_threshold=.*\)"]
    for r in rows:
        for aug in split_augmentations(r["augmentation"]):
            assert any(re.fullmatch(p, aug) for p in patterns), aug
            if m := re.fullmatch(r"bandwidth_limitation-(\w+)->(\d+)", aug):
                assert int(m.group(2)) < int(r["fs"]) or m.group(1) == "none"


def test_speech_free_rows_and_labels(rows):
    rows, _ = rows
    free = [r for r in rows if r["speech_uid"] == "none"]
    assert len(free) == 100 and all(r["rir_uid"] == "none" and r["snr_dB"] == "nan" for r in free)
    labels = Counter(primary_distortion(split_augmentations(r["augmentation"]), r["noise_uid"],
                                        None if r["rir_uid"] == "none" else r["rir_uid"], r["speech_uid"] == "none")
                     for r in rows)
    assert set(labels) == {"noise", "reverb", "wind", "bandwidth_limitation", "clipping", "codec", "packet_loss",
                           "speech_free"}


def test_plan_is_deterministic_and_seeded(sim):
    a = plan_simulation(fake_sources(200), sim, "sim", salt=0)
    b = plan_simulation(fake_sources(200), sim, "sim", salt=0)
    c = plan_simulation(fake_sources(200), sim, "sim", salt=1)
    assert a == b and a != c


def test_missing_pool_rate_is_a_clear_error(sim):
    src = fake_sources(10)
    src.noise = {"n0": SourceEntry("n0", 8000, "n0.flac")}
    with pytest.raises(PlanError, match="no noise source sampled at .* Hz or higher"):
        plan_simulation(src, sim, "sim")


def test_noise_and_rir_come_from_the_speech_rate_first(sim):
    """Official select_sample: same-rate sources when there are any, else one randomly chosen higher rate."""
    speech = {f"s{i:03d}": SourceEntry(f"s{i:03d}", (16000, 22050, 8000)[i % 3], "s.flac") for i in range(300)}
    src = Sources(root=Path("."), speech=speech,
                  noise={f"n{r}_{k}": SourceEntry(f"n{r}_{k}", r, "n.flac") for r in (16000, 48000) for k in range(3)},
                  wind={}, rir={f"r{r}": SourceEntry(f"r{r}", r, "r.flac") for r in (16000, 24000, 48000)},
                  lengths={u: 3 * e.fs for u, e in speech.items()})
    rows = plan_simulation(src, sim, "sim")
    picked: dict[int, Counter] = {fs: Counter() for fs in (8000, 16000, 22050)}
    for r in rows:
        picked[int(r["fs"])][src.noise[r["noise_uid"]].fs] += 1
        if r["rir_uid"] != "none":
            picked[int(r["fs"])][("rir", src.rir[r["rir_uid"]].fs)] += 1
    assert set(picked[16000]) == {16000, ("rir", 16000)}  # same rate whenever it exists
    assert set(picked[22050]) == {48000, ("rir", 24000), ("rir", 48000)}  # no 22.05 kHz: a higher rate
    assert {16000, 48000} <= set(picked[8000])  # no 8 kHz: either higher rate, chosen at random
    assert len({u for r in rows if r["fs"] == "16000" for u in [r["noise_uid"]]}) == 3  # uniform within a rate


def test_every_clip_is_used_once_before_any_is_reused():
    """Official select_sample with a used-sample record: unused clips at the row's rate, then unused clips at a
    higher rate, then (reuse) the used ones by the same rule, with replacement; without reuse, None."""
    rng = np.random.default_rng(0)
    index = {16000: ["a", "b", "c"], 48000: ["x", "y"]}
    pick = UnusedFirst(index, reuse=True, what="noise")
    first = [pick(16000, rng) for _ in range(5)]
    assert sorted(first[:3]) == ["a", "b", "c"] and sorted(first[3:]) == ["x", "y"]
    assert {pick(16000, rng) for _ in range(50)} == {"a", "b", "c"}  # used clips at the same rate first
    assert {pick(24000, rng) for _ in range(50)} == {"x", "y"}  # nothing at 24 kHz: the used higher rate
    assert index == {16000: ["a", "b", "c"], 48000: ["x", "y"]}  # the caller's index is not consumed

    once = UnusedFirst(index, reuse=False, what="RIR")
    assert sorted(once(8000, rng) for _ in range(5)) == ["a", "b", "c", "x", "y"]
    assert once(8000, rng) is None
    with pytest.raises(PlanError, match="no RIR source sampled at 96000 Hz or higher"):
        once(96000, rng)


def test_a_meta_tsv_uses_every_noise_and_rir_before_reusing_one(sim):
    rows = plan_simulation(fake_sources(400), sim, "sim")
    noise = [r["noise_uid"] for r in rows if not r["noise_uid"].startswith("wind_noise")]
    rirs = [r["rir_uid"] for r in rows if r["rir_uid"] != "none"]
    assert len(set(noise[:5])) == 5 and len(set(rirs[:3])) == 3  # 5 noise and 3 RIR clips in the pool
    no_reuse = dataclasses.replace(sim, reuse_rir=False)
    rows = plan_simulation(fake_sources(400), no_reuse, "sim")
    assert sorted(r["rir_uid"] for r in rows if r["rir_uid"] != "none") == ["r0", "r1", "r2"]
    with pytest.raises(PlanError, match="simulation.reuse_noise is false"):
        plan_simulation(fake_sources(400), dataclasses.replace(sim, reuse_noise=False), "sim")
