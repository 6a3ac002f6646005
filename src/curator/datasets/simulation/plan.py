"""Draw the per-utterance simulation parameters (the official ``meta.tsv``) from the source pools.

The draws follow the official training configuration and rules: noise and RIRs from sources at the speech's
own rate when there are any (else from one randomly chosen higher rate), each clip of a pool used once before
any is used again (``reuse_noise`` / ``reuse_rir`` say what happens then); wind noise instead of ordinary noise with
``prob_wind_noise``; SNR uniform in its range; a RIR with ``prob_reverberation``; 0..3 extra augmentations
drawn without replacement by weight, clipping redrawn away when wind noise (which clips itself) is used;
each augmentation's parameters written into its official string (packet-loss bursts drawn as the official
generator draws them). Speech-free rows (``n_speech_free``) are our extension. Everything comes from one seeded
generator walked in a fixed order, so the same sources and params give the same ``meta.tsv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curator.audio import SAMPLE_RATES
from curator.contract.manifest import NOT_AVAILABLE
from curator.datasets.kaldi import NONE, SourceEntry
from curator.datasets.params import AUGMENTATIONS, SimulationParams
from curator.datasets.simulation.distortions import packet_loss_indices
from curator.datasets.simulation.sources import Sources

SPEECH_FREE_SNR = "nan"
"""``snr_dB`` of a speech-free row: there is no speech to be relative to."""


class PlanError(ValueError):
    """The sources cannot satisfy the configuration (e.g. no noise at or above a speech rate)."""


RateIndex = dict[int, list[str]]
"""Source ids of one pool by sampling rate, each list sorted (what :func:`_pick` draws from)."""


def rate_index(pool: dict[str, SourceEntry]) -> RateIndex:
    """The pool's ids by sampling rate, sorted: built once per simulation, not once per drawn row (a pool holds
    up to hundreds of thousands of clips)."""
    by_rate: dict[int, list[str]] = {}
    for uid, e in pool.items():
        by_rate.setdefault(e.fs, []).append(uid)
    return {rate: sorted(ids) for rate, ids in by_rate.items()}


@dataclass(frozen=True)
class PoolIndex:
    """:func:`rate_index` of the noise, wind-noise and RIR pools of one :class:`Sources`."""

    noise: RateIndex
    wind: RateIndex
    rir: RateIndex

    @classmethod
    def of(cls, sources: Sources) -> PoolIndex:
        return cls(rate_index(sources.noise), rate_index(sources.wind), rate_index(sources.rir))


def _draw(by_rate: RateIndex, fs: int, rng: np.random.Generator, take: bool) -> tuple[int, str] | None:
    """The official ``select_sample`` on one pool, as ``(rate, id)``: uniformly among the entries sampled at
    exactly ``fs`` when there are any, else among those of one higher rate, chosen uniformly from the higher
    rates that have entries (the clip is resampled down on use). ``take`` removes the drawn id from
    ``by_rate`` (swapped with the last: O(1), and the order stays a function of the draws). None when no rate
    at or above ``fs`` has an entry."""
    if by_rate.get(fs):
        rate = fs
    else:
        higher = sorted(r for r, ids in by_rate.items() if r > fs and ids)
        if not higher:
            return None
        rate = higher[int(rng.integers(len(higher)))]
    ids = by_rate[rate]
    i = int(rng.integers(len(ids)))
    uid = ids[i]
    if take:
        ids[i] = ids[-1]
        ids.pop()
    return rate, uid


def _missing(what: str, fs: int) -> PlanError:
    return PlanError(f"no {what} source sampled at {fs} Hz or higher; add one to the {what} list")


def _pick(by_rate: RateIndex, fs: int, rng: np.random.Generator, what: str) -> str:
    """A source id drawn with replacement: dynamic mixing, where every example is drawn on its own (as the
    official on-the-fly simulation draws them, with no record of used clips)."""
    hit = _draw(by_rate, fs, rng, take=False)
    if hit is None:
        raise _missing(what, fs)
    return hit[1]


class UnusedFirst:
    """The official offline draw (``generate_data_param.py``, ``select_sample`` with a used-sample record):
    every clip of a pool is used once before any is used again. Unused clips at the row's rate first, then
    unused clips at a higher rate; when none is left, with ``reuse`` (the official ``reuse_noise`` /
    ``reuse_rir``) the used clips by the same rule, with replacement, and without it None."""

    def __init__(self, by_rate: RateIndex, reuse: bool, what: str) -> None:
        self.unused = {rate: list(ids) for rate, ids in by_rate.items()}
        self.used: RateIndex = {rate: [] for rate in by_rate}
        self.reuse, self.what = reuse, what

    def __call__(self, fs: int, rng: np.random.Generator) -> str | None:
        hit = _draw(self.unused, fs, rng, take=True)
        if hit is not None:
            self.used[hit[0]].append(hit[1])
            return hit[1]
        if not any(ids for rate, ids in self.used.items() if rate >= fs):
            raise _missing(self.what, fs)  # the pool never had one: not a matter of reuse
        hit = _draw(self.used, fs, rng, take=False) if self.reuse else None
        return None if hit is None else hit[1]


@dataclass
class Pickers:
    """One :class:`UnusedFirst` per pool of a simulation run (a split's ``meta.tsv``)."""

    noise: UnusedFirst
    wind: UnusedFirst
    rir: UnusedFirst

    @classmethod
    def of(cls, index: PoolIndex, sim: SimulationParams) -> Pickers:
        # wind noise is always reused, as the official generator hard-codes
        return cls(UnusedFirst(index.noise, sim.reuse_noise, "noise"), UnusedFirst(index.wind, True, "wind noise"),
                   UnusedFirst(index.rir, sim.reuse_rir, "RIR"))


def _draw_augmentations(sim: SimulationParams, use_wind: bool, rng: np.random.Generator) -> list[str]:
    probs = sim.augmentation_count_probs()
    n = int(rng.choice(list(probs), p=np.array(list(probs.values())) / sum(probs.values())))
    if n == 0:
        return []
    weights = sim.augmentations.weights()
    names = [a for a in AUGMENTATIONS if weights[a] > 0]
    p = np.array([weights[a] for a in names]) / sum(weights[a] for a in names)
    allowed = [a for a in names if a != "clipping"] if use_wind else names
    if n > len(allowed):
        raise PlanError(f"cannot draw {n} augmentations without clipping (wind noise); only {allowed} remain")
    while True:
        drawn = [names[i] for i in rng.choice(len(names), size=n, replace=False, p=p)]
        if not (use_wind and "clipping" in drawn):
            return drawn


def _augmentation_string(name: str, sim: SimulationParams, fs: int, length: int, rng: np.random.Generator) -> str:
    """The official string of one augmentation with its parameters drawn."""
    aug = sim.augmentations
    if name == "bandwidth_limitation":
        lower = [r for r in SAMPLE_RATES if r < fs]
        if not lower:
            return f"bandwidth_limitation-none->{fs}"
        method = aug.bandwidth_limitation.resample_methods[int(rng.integers(len(aug.bandwidth_limitation.resample_methods)))]
        return f"bandwidth_limitation-{method}->{lower[int(rng.integers(len(lower)))]}"
    if name == "clipping":
        lo = float(rng.uniform(*aug.clipping.min_quantile))
        hi = float(rng.uniform(*aug.clipping.max_quantile))
        return f"clipping(min={lo},max={hi})"
    if name == "codec":
        fmt = aug.codec.formats[int(rng.integers(len(aug.codec.formats)))]
        if fmt == "mp3":
            encoder, qscale = "None", int(rng.integers(*aug.codec.mp3_qscale))
        else:
            encoder = aug.codec.ogg_encoders[int(rng.integers(len(aug.codec.ogg_encoders)))]
            qscale = int(rng.integers(*aug.codec.ogg_qscale))
        return f"codec(format={fmt},encoder={encoder},qscale={qscale})"
    pl = aug.packet_loss
    idx = packet_loss_indices(length, fs, pl.packet_duration_ms, float(rng.uniform(*pl.loss_rate)), pl.max_burst, rng)
    return f"packet_loss(packet_loss_indices={idx},packet_duration_ms={pl.packet_duration_ms})"


def _wind_string(sim: SimulationParams, rng: np.random.Generator) -> str:
    w = sim.wind
    values = {k: float(rng.uniform(*getattr(w, k))) for k in ("threshold", "ratio", "attack_ms", "release_ms",
                                                                "sc_gain", "clipping_threshold")}
    clip = bool(rng.random() < w.clipping_chance)
    return (f"wind_noise(threshold={values['threshold']},ratio={values['ratio']},attack={values['attack_ms']},"
            f"release={values['release_ms']},sc_gain={values['sc_gain']},clipping={clip},"
            f"clipping_threshold={values['clipping_threshold']})")


def plan_simulation(sources: Sources, sim: SimulationParams, out_dir: str, salt: int = 0, id_prefix: str = "",
                    n_speech_free: int = 0) -> list[dict[str, str]]:
    """Draw one ``meta.tsv`` row per speech source (plus ``n_speech_free`` noise-only rows).

    Speech is walked by sampling rate (highest first) then id, as the official generator does; output
    files go to ``{out_dir}/{noisy,clean}/{count // max_files_per_dir}/fileid_{count}.{format}``.
    ``salt`` separates the random streams of splits that share one seed.
    """
    sources.check_pools()
    rng = np.random.default_rng([sim.seed, salt])
    order = sorted(sources.speech.values(), key=lambda e: (-e.fs, e.uid))
    rows = []
    pickers = Pickers.of(PoolIndex.of(sources), sim)
    for count, entry in enumerate(order, 1):
        rows.append(_plan_row(count, entry.uid, entry.fs, sources.lengths[entry.uid], sources, pickers, sim, out_dir,
                              id_prefix, rng))
    for k in range(n_speech_free):
        donor = order[int(rng.integers(len(order)))]
        rows.append(_plan_row(len(order) + k + 1, None, donor.fs, sources.lengths[donor.uid], sources, pickers, sim,
                              out_dir, id_prefix, rng))
    return rows


def plan_row(uid: str, speech_uid: str | None, fs: int, length: int, sources: Sources, sim: SimulationParams,
             rng: np.random.Generator, index: PoolIndex | None = None) -> dict[str, str]:
    """One row's draws (noise or wind, SNR, RIR, augmentations) from ``rng``, as :func:`plan_simulation` draws
    each of its rows, under the id ``uid`` (no output paths): what dynamic mixing draws per example and epoch.
    ``speech_uid`` None is a speech-free row; ``index`` (``PoolIndex.of(sources)``, kept by a caller that draws
    many rows) saves re-indexing the pools."""
    index = PoolIndex.of(sources) if index is None else index
    row = _plan_row(0, speech_uid, fs, length, sources, index, sim, "", "", rng)
    return {**row, "id": uid, "noisy_path": NONE, "clean_path": NONE}


def _plan_row(count: int, speech_uid: str | None, fs: int, length: int, sources: Sources,
              pools: PoolIndex | Pickers, sim: SimulationParams, out_dir: str, id_prefix: str,
              rng: np.random.Generator) -> dict[str, str]:
    """One row's draws; ``pools`` a :class:`Pickers` draws clips unused first (a ``meta.tsv``), a
    :class:`PoolIndex` with replacement (dynamic mixing)."""

    def pick(pool: str, what: str) -> str | None:
        if isinstance(pools, PoolIndex):
            return _pick(getattr(pools, pool), fs, rng, what)
        return getattr(pools, pool)(fs, rng)

    speech_free = speech_uid is None
    use_wind = bool(sources.wind) and not speech_free and bool(rng.random() < sim.prob_wind_noise)
    augs = _draw_augmentations(sim, use_wind, rng)
    if use_wind:
        noise_uid = pick("wind", "wind noise")
        aug_strings = [_wind_string(sim, rng)]
        snr = float(rng.uniform(*sim.wind_snr_db))
    else:
        noise_uid = pick("noise", "noise")
        if noise_uid is None:
            raise PlanError(f"every noise clip sampled at {fs} Hz or higher is used and simulation.reuse_noise is "
                            "false: add noise clips or set simulation.reuse_noise to true")
        aug_strings = []
        snr = float(rng.uniform(*sim.snr_db))
    rir_uid = NONE
    if sources.rir and not speech_free and rng.random() < sim.prob_reverberation:
        rir_uid = pick("rir", "RIR") or NONE  # None: every RIR used and simulation.reuse_rir false (official)
    aug_strings += [_augmentation_string(a, sim, fs, length, rng) for a in augs]
    name = f"fileid_{count}.{sim.out_format}"
    sub = str(count // sim.max_files_per_dir)
    text = NOT_AVAILABLE if speech_free else sources.text.get(speech_uid, NOT_AVAILABLE)
    return {
        "id": f"{id_prefix}fileid_{count}",
        "noisy_path": f"{out_dir}/noisy/{sub}/{name}",
        "speech_uid": NONE if speech_free else speech_uid,
        "speech_sid": NONE if speech_free else sources.utt2spk.get(speech_uid, speech_uid),
        "clean_path": f"{out_dir}/clean/{sub}/{name}",
        "noise_uid": noise_uid,
        "snr_dB": SPEECH_FREE_SNR if speech_free else repr(snr),
        "rir_uid": rir_uid,
        "augmentation": "/".join(aug_strings) if aug_strings else NONE,
        "fs": str(fs),
        "length": str(length),
        "text": " ".join(text.split()),
    }
