"""Typed, validated views of the ``dataset`` and ``simulation`` sections of params.yaml.

``dataset`` says how the chosen dataset (``data.dataset``, see :mod:`curator.contract.data`) is made or
imported; ``simulation`` holds every probability and range of the URGENT-style simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from curator.audio import CHANNEL_POLICIES, RATE_POLICIES, SAMPLE_RATES
from curator.config import ConfigError, check_choice, check_range, register_section
from curator.datasets.labels import LANGUAGES

DEFECTS = ("noise", "reverb", "bandlimit")
"""Defects the mini dataset plants in its imperfect clean references (``reference_truth.csv``)."""

AUDIO_CHECKS = ("lists", "header", "decode")
RESAMPLE_METHODS = ("kaiser_best", "kaiser_fast", "scipy", "polyphase", "soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq")
SIMULATE_MODES = ("none", "builtin", "official")


def _check_pair(where: str, pair: list[float], lo: float | None = None, hi: float | None = None) -> None:
    """A ``[low, high]`` range: two numbers, ordered, inside ``[lo, hi]``."""
    if len(pair) != 2:
        raise ConfigError(f"'{where}' must be a [low, high] pair, got {pair!r}")
    if pair[0] > pair[1]:
        raise ConfigError(f"'{where}' = {pair!r}: low must not exceed high")
    check_range(f"{where}[0]", pair[0], lo, hi)
    check_range(f"{where}[1]", pair[1], lo, hi)


def _check_weights(where: str, weights: dict[str, float], valid: tuple[str, ...]) -> None:
    for key, w in weights.items():
        check_choice(f"{where}.{key}", key, valid)
        check_range(f"{where}.{key}", w, lo=0.0)
    if not weights or sum(weights.values()) <= 0:
        raise ConfigError(f"'{where}' needs at least one positive weight (keys: {', '.join(valid)})")


# --------------------------------------------------------------------------------------------- dataset


@dataclass
class SplitCounts:
    """One integer per split."""

    train: int
    dev: int
    test: int


@dataclass
class MiniParams:
    """Size and make-up of the embedded mini dataset (see cards/mini.md)."""

    n_train: int
    n_dev: int
    n_test: int
    speakers: SplitCounts
    duration_sec: list[float]
    words_per_sec: float
    edge_silence_sec: list[float]
    languages: dict[str, float]
    sample_rates: list[int]
    speaker_warp: list[float]
    speaker_length_scale: list[float]
    speaker_tilt: list[float]
    speech_free_fraction: float
    imperfect_fraction: float
    imperfect_splits: list[str]
    defects: dict[str, float]
    defect_snr_db: list[float]
    defect_bandlimit_rates: list[int]
    noises_per_type: int
    noise_duration_sec: float
    babble_talkers: list[int]
    n_rirs: SplitCounts
    rir_sample_rate: int
    rt60_sec: list[float]
    room_size_m: list[float]

    def __post_init__(self) -> None:
        w = "dataset.mini"
        for split in ("train", "dev", "test"):
            check_range(f"{w}.n_{split}", getattr(self, f"n_{split}"), lo=2)
            check_range(f"{w}.speakers.{split}", getattr(self.speakers, split), lo=1)
            check_range(f"{w}.n_rirs.{split}", getattr(self.n_rirs, split), lo=1)
        _check_pair(f"{w}.duration_sec", self.duration_sec, lo=0.5, hi=30.0)
        check_range(f"{w}.words_per_sec", self.words_per_sec, lo=0.5, hi=6.0)
        _check_pair(f"{w}.edge_silence_sec", self.edge_silence_sec, lo=0.0, hi=2.0)
        _check_weights(f"{w}.languages", self.languages, LANGUAGES)
        if not self.sample_rates:
            raise ConfigError(f"'{w}.sample_rates' must list at least one of {SAMPLE_RATES}")
        for sr in self.sample_rates:
            check_choice(f"{w}.sample_rates", str(sr), tuple(map(str, SAMPLE_RATES)))
        _check_pair(f"{w}.speaker_warp", self.speaker_warp, lo=0.5, hi=2.0)
        _check_pair(f"{w}.speaker_length_scale", self.speaker_length_scale, lo=0.3, hi=3.0)
        _check_pair(f"{w}.speaker_tilt", self.speaker_tilt, lo=-0.95, hi=0.95)
        check_range(f"{w}.speech_free_fraction", self.speech_free_fraction, lo=0.0, hi=0.5)
        check_range(f"{w}.imperfect_fraction", self.imperfect_fraction, lo=0.0, hi=1.0)
        for split in self.imperfect_splits:
            check_choice(f"{w}.imperfect_splits", split, ("train", "dev", "test"))
        _check_weights(f"{w}.defects", self.defects, DEFECTS)
        _check_pair(f"{w}.defect_snr_db", self.defect_snr_db, lo=-10.0, hi=60.0)
        if not self.defect_bandlimit_rates or min(self.defect_bandlimit_rates) < 2000:
            raise ConfigError(f"'{w}.defect_bandlimit_rates' must list rates >= 2000 Hz")
        check_range(f"{w}.noises_per_type", self.noises_per_type, lo=1)
        check_range(f"{w}.noise_duration_sec", self.noise_duration_sec, lo=1.0, hi=120.0)
        _check_pair(f"{w}.babble_talkers", [float(v) for v in self.babble_talkers], lo=1)
        check_choice(f"{w}.rir_sample_rate", str(self.rir_sample_rate), tuple(map(str, SAMPLE_RATES)))
        _check_pair(f"{w}.rt60_sec", self.rt60_sec, lo=0.05, hi=2.0)
        _check_pair(f"{w}.room_size_m", self.room_size_m, lo=2.0, hi=50.0)

    def n_utts(self, split: str) -> int:
        """``n_<split>``."""
        return int(getattr(self, f"n_{split}"))


@dataclass
class SplitPaths:
    """One optional path per split (null: the split does not exist)."""

    train: str | None
    dev: str | None
    test: str | None


@dataclass
class OfficialSimulation:
    """How ``prepare`` simulates for ``urgent2026`` (none: import only)."""

    mode: str
    baseline_repo: str
    config: str
    python: str
    nj: int
    split: str

    def __post_init__(self) -> None:
        check_choice("dataset.urgent2026.simulate.mode", self.mode, SIMULATE_MODES)
        check_choice("dataset.urgent2026.simulate.split", self.split, ("train", "dev", "test"))
        check_range("dataset.urgent2026.simulate.nj", self.nj, lo=1)


@dataclass
class SourceLists:
    """Official source lists (``uid fs path`` / ``uid value``) for the builtin simulator."""

    speech: list[str]
    noise: list[str]
    wind_noise: list[str]
    rir: list[str]
    utt2spk: list[str]
    text: list[str]
    utt2lang: list[str]
    corpus: dict[str, str]
    """Corpus label of a source list by its file stem (the ``sources`` stage); an unnamed list is its stem."""


@dataclass
class SpeakerHoldout:
    """How dev and test are held out of the train folder by speaker when they have no list folder."""

    dev: float
    test: float
    max_utterances: int | None

    def __post_init__(self) -> None:
        w = "dataset.urgent2026.holdout"
        check_range(f"{w}.dev", self.dev, lo=0.0, hi=0.5)
        check_range(f"{w}.test", self.test, lo=0.0, hi=0.5)
        check_range(f"{w}.max_utterances", self.max_utterances, lo=1)

    def fraction(self, split: str) -> float:
        """``dev`` or ``test``."""
        return float(getattr(self, split))


@dataclass
class Urgent2026Params:
    """Where the official URGENT layout lives (see cards/urgent2026.md)."""

    root: str
    lists: SplitPaths
    meta_tsv: SplitPaths
    holdout: SpeakerHoldout
    checksums: str | None
    simulate: OfficialSimulation
    sources: SourceLists


@dataclass
class PathInference:
    """Which labels the folder dataset reads from path components."""

    language_from_path: bool
    distortion_from_path: bool


@dataclass
class FolderSources:
    """Source recordings of the folder dataset (the ``sources`` stage): a glob per kind under the root (null:
    none of that kind), and which folder above a file names its speaker and its corpus (null: none / ``folder``)."""

    speech: str | None
    noise: str | None
    wind_noise: str | None
    rir: str | None
    speaker_level: int | None
    corpus_level: int | None

    def __post_init__(self) -> None:
        check_range("dataset.folder.sources.speaker_level", self.speaker_level, lo=1)
        check_range("dataset.folder.sources.corpus_level", self.corpus_level, lo=1)


@dataclass
class FolderParams:
    """Any tree of audio files: globs per split, a noisy->clean pairing rule, labels from paths."""

    root: str
    globs: SplitPaths
    clean_from: str
    clean_to: str
    infer: PathInference
    default_language: str
    default_distortion: str
    sources: FolderSources

    def __post_init__(self) -> None:
        check_choice("dataset.folder.default_language", self.default_language, LANGUAGES)


@register_section("dataset")
@dataclass
class DatasetParams:
    """The ``dataset`` section: how audio is checked, and one sub-section per dataset (``data.dataset`` picks one)."""

    seed: int
    num_workers: int
    audio_check: str
    silence_peak: float
    max_report_examples: int
    sample_rates: list[int]
    rate_policy: str
    channel_policy: str
    mini: MiniParams
    urgent2026: Urgent2026Params
    folder: FolderParams

    def __post_init__(self) -> None:
        check_range("dataset.num_workers", self.num_workers, lo=1)
        check_choice("dataset.audio_check", self.audio_check, AUDIO_CHECKS)
        check_range("dataset.silence_peak", self.silence_peak, lo=0.0, hi=1.0)
        check_range("dataset.max_report_examples", self.max_report_examples, lo=0)
        if not self.sample_rates:
            raise ConfigError(f"'dataset.sample_rates' must list at least one of {SAMPLE_RATES}")
        for sr in self.sample_rates:
            check_choice("dataset.sample_rates", str(sr), tuple(map(str, SAMPLE_RATES)))
        check_choice("dataset.rate_policy", self.rate_policy, RATE_POLICIES)
        check_choice("dataset.channel_policy", self.channel_policy, CHANNEL_POLICIES)


# ------------------------------------------------------------------------------------------ simulation


@dataclass
class WindParams:
    """Wind-noise mixing (official: a side-chain compressor ducks speech under gusts, then optional clipping)."""

    threshold: list[float]
    ratio: list[float]
    attack_ms: list[float]
    release_ms: list[float]
    sc_gain: list[float]
    clipping_threshold: list[float]
    clipping_chance: float
    clip_always: bool
    scale_dry_clean: bool

    def __post_init__(self) -> None:
        w = "simulation.wind"
        _check_pair(f"{w}.threshold", self.threshold, lo=0.0, hi=1.0)
        _check_pair(f"{w}.ratio", self.ratio, lo=1.0)
        _check_pair(f"{w}.attack_ms", self.attack_ms, lo=0.01)
        _check_pair(f"{w}.release_ms", self.release_ms, lo=0.01)
        _check_pair(f"{w}.sc_gain", self.sc_gain, lo=0.0)
        _check_pair(f"{w}.clipping_threshold", self.clipping_threshold, lo=0.0, hi=1.0)
        check_range(f"{w}.clipping_chance", self.clipping_chance, lo=0.0, hi=1.0)


@dataclass
class BandwidthParams:
    """Bandwidth limitation: resample down to a lower URGENT rate and back."""

    weight: float
    resample_methods: list[str]

    def __post_init__(self) -> None:
        check_range("simulation.augmentations.bandwidth_limitation.weight", self.weight, lo=0.0)
        if not self.resample_methods:
            raise ConfigError("'simulation.augmentations.bandwidth_limitation.resample_methods' is empty; "
                              f"choose from {', '.join(RESAMPLE_METHODS)}")
        for m in self.resample_methods:
            check_choice("simulation.augmentations.bandwidth_limitation.resample_methods", m, RESAMPLE_METHODS)


@dataclass
class ClippingParams:
    """Clipping at quantiles of the signal itself."""

    weight: float
    min_quantile: list[float]
    max_quantile: list[float]

    def __post_init__(self) -> None:
        w = "simulation.augmentations.clipping"
        check_range(f"{w}.weight", self.weight, lo=0.0)
        _check_pair(f"{w}.min_quantile", self.min_quantile, lo=0.0, hi=0.5)
        _check_pair(f"{w}.max_quantile", self.max_quantile, lo=0.5, hi=1.0)


@dataclass
class CodecParams:
    """Lossy codec round trip: mp3 or ogg (vorbis / opus) at a drawn quality."""

    weight: float
    formats: list[str]
    ogg_encoders: list[str]
    mp3_qscale: list[int]
    ogg_qscale: list[int]

    def __post_init__(self) -> None:
        w = "simulation.augmentations.codec"
        check_range(f"{w}.weight", self.weight, lo=0.0)
        if not self.formats:
            raise ConfigError(f"'{w}.formats' is empty; choose from mp3, ogg")
        for f in self.formats:
            check_choice(f"{w}.formats", f, ("mp3", "ogg"))
        for e in self.ogg_encoders:
            check_choice(f"{w}.ogg_encoders", e, ("vorbis", "opus"))
        if "ogg" in self.formats and not self.ogg_encoders:
            raise ConfigError(f"'{w}.ogg_encoders' is empty but 'ogg' is in formats; choose vorbis and/or opus")
        _check_pair(f"{w}.mp3_qscale", [float(q) for q in self.mp3_qscale], lo=0, hi=10)
        _check_pair(f"{w}.ogg_qscale", [float(q) for q in self.ogg_qscale], lo=-1, hi=10)


@dataclass
class PacketLossParams:
    """Packet loss: zeroed packets in bursts."""

    weight: float
    packet_duration_ms: int
    loss_rate: list[float]
    max_burst: int

    def __post_init__(self) -> None:
        w = "simulation.augmentations.packet_loss"
        check_range(f"{w}.weight", self.weight, lo=0.0)
        check_range(f"{w}.packet_duration_ms", self.packet_duration_ms, lo=1, hi=1000)
        _check_pair(f"{w}.loss_rate", self.loss_rate, lo=0.0, hi=1.0)
        check_range(f"{w}.max_burst", self.max_burst, lo=2)


@dataclass
class AugmentationParams:
    """The four extra augmentations and their weights."""

    bandwidth_limitation: BandwidthParams
    clipping: ClippingParams
    codec: CodecParams
    packet_loss: PacketLossParams

    def weights(self) -> dict[str, float]:
        """Augmentation name -> sampling weight, in the official order."""
        return {name: float(getattr(self, name).weight) for name in AUGMENTATIONS}


AUGMENTATIONS = ("bandwidth_limitation", "clipping", "codec", "packet_loss")


@register_section("simulation")
@dataclass
class SimulationParams:
    """The ``simulation`` section: the official URGENT 2026 training configuration, knob for knob."""

    seed: int
    snr_db: list[float]
    reuse_noise: bool
    prob_wind_noise: float
    wind_snr_db: list[float]
    wind: WindParams
    prob_reverberation: float
    reuse_rir: bool
    early_rir_sec: float
    rir_start_level: float
    num_augmentations: dict[str, float]
    augmentations: AugmentationParams
    peak_norm: float
    highpass: bool
    highpass_hz: float
    highpass_transition_hz: float
    highpass_attenuation: float
    active_threshold: float
    active_frame_length: int
    active_frame_shift: int
    out_format: str
    max_files_per_dir: int

    def __post_init__(self) -> None:
        w = "simulation"
        _check_pair(f"{w}.snr_db", self.snr_db, lo=-50.0, hi=80.0)
        check_range(f"{w}.prob_wind_noise", self.prob_wind_noise, lo=0.0, hi=1.0)
        _check_pair(f"{w}.wind_snr_db", self.wind_snr_db, lo=-50.0, hi=80.0)
        check_range(f"{w}.prob_reverberation", self.prob_reverberation, lo=0.0, hi=1.0)
        check_range(f"{w}.early_rir_sec", self.early_rir_sec, lo=0.0, hi=1.0)
        check_range(f"{w}.rir_start_level", self.rir_start_level, lo=0.0, hi=1.0, lo_open=True)
        counts = {}
        for key, p in self.num_augmentations.items():
            if not key.lstrip("-").isdigit() or not 0 <= int(key) <= len(AUGMENTATIONS):
                raise ConfigError(f"'{w}.num_augmentations' key {key!r} must be an integer 0..{len(AUGMENTATIONS)}")
            check_range(f"{w}.num_augmentations.{key}", p, lo=0.0, hi=1.0)
            counts[int(key)] = p
        if abs(sum(counts.values()) - 1.0) > 1e-6:
            raise ConfigError(f"'{w}.num_augmentations' probabilities must sum to 1, got {sum(counts.values())}")
        positive = [n for n, p in counts.items() if p > 0]
        n_enabled = sum(1 for v in self.augmentations.weights().values() if v > 0)
        if positive and max(positive) > n_enabled:
            raise ConfigError(f"'{w}.num_augmentations' allows {max(positive)} augmentations but only "
                              f"{n_enabled} have a positive weight in '{w}.augmentations'")
        check_range(f"{w}.peak_norm", self.peak_norm, lo=0.0, hi=1.0, lo_open=True)
        check_range(f"{w}.highpass_hz", self.highpass_hz, lo=0.0, hi=1000.0, lo_open=True)
        check_range(f"{w}.highpass_transition_hz", self.highpass_transition_hz, lo=0.0, hi=1000.0, lo_open=True)
        check_range(f"{w}.highpass_attenuation", self.highpass_attenuation, lo=0.0, hi=1000.0, lo_open=True)
        check_range(f"{w}.active_threshold", self.active_threshold, lo=0.0, hi=1.0)
        check_range(f"{w}.active_frame_length", self.active_frame_length, lo=1)
        check_range(f"{w}.active_frame_shift", self.active_frame_shift, lo=1)
        if self.active_frame_shift > self.active_frame_length:
            raise ConfigError(f"'{w}.active_frame_shift' ({self.active_frame_shift}) must not exceed "
                              f"'{w}.active_frame_length' ({self.active_frame_length})")
        check_choice(f"{w}.out_format", self.out_format, ("flac", "wav"))
        check_range(f"{w}.max_files_per_dir", self.max_files_per_dir, lo=1)

    def augmentation_count_probs(self) -> dict[int, float]:
        """Number of extra augmentations -> probability, ascending."""
        return {int(k): float(v) for k, v in sorted(self.num_augmentations.items(), key=lambda kv: int(kv[0]))}


# ------------------------------------------------------------------------------------ source_simulate


@register_section("source_simulate")
@dataclass
class SourceSimulateParams:
    """The ``source_simulate`` section: the training pairs simulated from the selected sources
    (``curator.datasets.simulation.from_selection``; the draws themselves follow the ``simulation`` section)."""

    seed: int = 0
    speech_free_fraction: float = 0.05
    num_workers: int = 1

    def __post_init__(self) -> None:
        check_range("source_simulate.speech_free_fraction", self.speech_free_fraction, lo=0.0, hi=1.0)
        if self.speech_free_fraction >= 1.0:
            raise ConfigError(f"'source_simulate.speech_free_fraction' = {self.speech_free_fraction} must be < 1: "
                              "it is the share of speech-free rows among all simulated rows")
        check_range("source_simulate.num_workers", self.num_workers, lo=1)
