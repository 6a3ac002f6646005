"""Build the mini dataset: synthesise sources, write them as official source lists, then simulate.

Layout under the output root (all list paths relative to it, as the official lists are relative to the
folder the simulation ran in)::

    sources/audio/{speech,noise,rir}/<split>/*.flac    source pools
    sources/<split>/{speech.scp,noise.scp,wind_noise.scp,rirs.scp,utt2spk,text,utt2lang}
    simulation_<split>/{noisy,clean}/<n>/fileid_<k>.flac and simulation_<split>/log/meta.tsv
    lists/<split>/{wav.scp,spk1.scp,utt2fs,utt2spk,utt2lang,text,speech_length.scp}
    reference_truth.csv   (utt_id, imperfect, defect) of the planted reference defects
    checksums.sha256      sha256sum of every file above

Every random choice comes from generators seeded by (seed, split, index), so the same params give
byte-identical files whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from curator.audio import SAMPLE_RATES, load_audio, resample, save_audio
from curator.contract.data import REFERENCE_TRUTH
from curator.datasets.base import write_reference_truth
from curator.datasets.kaldi import NONE, SourceEntry, write_kv, write_source_list
from curator.datasets.mini import noises as N
from curator.datasets.mini.rirs import shoebox_rir
from curator.datasets.mini.text import SentenceSource
from curator.datasets.mini.tts import PIPER_SR, Speaker, Synthesizer
from curator.datasets.params import MiniParams, SimulationParams
from curator.datasets.simulation import distortions as D
from curator.datasets.simulation.plan import plan_simulation
from curator.datasets.simulation.render import RenderError, render_all, write_lists
from curator.datasets.simulation.sources import Sources
from curator.determinism import pin_threads
from curator.io import atomic_open, sha256_file

SPLITS = ("train", "dev", "test")
TEXT_SALT = 101
NOISE_SALT = 202
RIR_SALT = 303
NOISE_SR = max(SAMPLE_RATES)
"""Noise clips are generated at the highest rate so that they serve speech of every rate."""
SOURCE_PEAK = 0.9
"""Source speech is peak-normalised to this after its defect is applied."""
DEFECT_RESAMPLER = "soxr_hq"
CHECKSUM_FILE = "checksums.sha256"
SYNTH_THREADS = 1
"""BLAS/OpenMP threads in every process that synthesises or simulates: parallelism comes from the worker
processes, and a fixed count keeps multi-threaded reductions in one order (curator.determinism)."""


@dataclass(frozen=True)
class SpeechJob:
    """Everything needed to synthesise one clean source utterance, independent of any other job."""

    uid: str
    text: str
    language: str
    speaker: Speaker
    fs: int
    edges: tuple[float, float]
    defect: str
    seed: tuple[int, ...]
    path: str


def _speakers(split: str, n: int, mini: MiniParams, rng: np.random.Generator) -> list[Speaker]:
    return [Speaker(f"mini_{split}_spk{j:02d}", float(rng.uniform(*mini.speaker_warp)),
                    float(rng.uniform(*mini.speaker_length_scale)), float(rng.uniform(*mini.speaker_tilt)))
            for j in range(n)]


def plan_speech(mini: MiniParams, seed: int) -> dict[str, list[SpeechJob]]:
    """Speakers, texts, languages, rates and planted defects of every split's clean sources.

    Splits have their own speakers and (one shared sentence source) disjoint texts.
    """
    sentences = SentenceSource(np.random.SeedSequence([seed, TEXT_SALT]).generate_state(1)[0])
    langs = sorted(mini.languages)
    lang_p = np.array([mini.languages[k] for k in langs]) / sum(mini.languages.values())
    defects = sorted(d for d, w in mini.defects.items() if w > 0)
    defect_p = np.array([mini.defects[d] for d in defects]) / sum(mini.defects[d] for d in defects)
    jobs: dict[str, list[SpeechJob]] = {}
    for s_idx, split in enumerate(SPLITS):
        rng = np.random.default_rng([seed, s_idx])
        speakers = _speakers(split, getattr(mini.speakers, split), mini, rng)
        n_speech = mini.n_utts(split) - n_speech_free(mini, split)
        imperfect = np.zeros(n_speech, dtype=bool)
        if split in mini.imperfect_splits:
            imperfect[rng.permutation(n_speech)[: int(round(mini.imperfect_fraction * n_speech))]] = True
        split_jobs = []
        for k in range(n_speech):
            lang = langs[int(rng.choice(len(langs), p=lang_p))]
            fs = int(mini.sample_rates[int(rng.integers(len(mini.sample_rates)))])
            target = float(rng.uniform(*mini.duration_sec))
            defect = defects[int(rng.choice(len(defects), p=defect_p))] if imperfect[k] else NONE
            if defect == "bandlimit" and not any(r < fs for r in mini.defect_bandlimit_rates):
                defect = "noise"
            uid = f"mini_{split}_{lang}_{k:05d}"
            split_jobs.append(SpeechJob(
                uid=uid, text=sentences.sentence(lang, target * mini.words_per_sec), language=lang,
                speaker=speakers[k % len(speakers)], fs=fs,
                edges=(float(rng.uniform(*mini.edge_silence_sec)), float(rng.uniform(*mini.edge_silence_sec))),
                defect=defect, seed=(seed, s_idx, k), path=f"sources/audio/speech/{split}/{uid}.flac"))
        jobs[split] = split_jobs
    return jobs


def n_speech_free(mini: MiniParams, split: str) -> int:
    """Noise-only examples in a split (``speech_free_fraction`` of its utterances)."""
    return int(round(mini.speech_free_fraction * mini.n_utts(split)))


_SYNTH: dict[str, object] = {}


def _init_synth(root: Path, mini: MiniParams, sim: SimulationParams) -> None:
    pin_threads(SYNTH_THREADS)
    _SYNTH.update(tts=Synthesizer(), root=root, mini=mini, sim=sim)


def _make_speech(job: SpeechJob) -> str:
    """Synthesise, pad, resample to the job's rate, plant its defect, save."""
    tts: Synthesizer = _SYNTH["tts"]  # type: ignore[assignment]
    mini: MiniParams = _SYNTH["mini"]  # type: ignore[assignment]
    x = tts.synthesize(job.text, job.language, job.speaker)
    pad = (int(job.edges[0] * PIPER_SR), int(job.edges[1] * PIPER_SR))
    x = np.pad(x, pad)
    x = resample(x, PIPER_SR, job.fs)
    x = plant_defect(x, job.fs, job.defect, mini, _SYNTH["sim"], np.random.default_rng(job.seed))  # type: ignore[arg-type]
    peak = float(np.max(np.abs(x)))
    save_audio(Path(_SYNTH["root"]) / job.path, x * (SOURCE_PEAK / peak) if peak > 0 else x, job.fs)  # type: ignore[arg-type]
    return job.uid


def plant_defect(x: np.ndarray, fs: int, defect: str, mini: MiniParams, sim: SimulationParams,
                 rng: np.random.Generator) -> np.ndarray:
    """Make a clean reference imperfect: low-level noise, reverberation or band-limiting."""
    if defect == "noise":
        noise = N.coloured(len(x), fs, rng)
        snr = float(rng.uniform(*mini.defect_snr_db))
        return x + D.scale_to_snr(x, noise, snr, sim.active_threshold, sim.active_frame_length, sim.active_frame_shift)
    if defect == "reverb":
        rir = shoebox_rir(fs, float(rng.uniform(*mini.rt60_sec)), tuple(mini.room_size_m), rng)  # type: ignore[arg-type]
        return D.reverberate(x, rir)
    if defect == "bandlimit":
        rates = [r for r in mini.defect_bandlimit_rates if r < fs]
        return D.bandwidth_limitation(x, fs, rates[int(rng.integers(len(rates)))], DEFECT_RESAMPLER)
    return x


def _make_rir(args: tuple[int, float, tuple[float, float], tuple[int, ...]]) -> np.ndarray:
    sr, rt60, size, seed = args
    return shoebox_rir(sr, rt60, size, np.random.default_rng(seed))


def make_noises(root: Path, split: str, s_idx: int, speech: Sequence[SourceEntry], mini: MiniParams,
                seed: int) -> tuple[list[SourceEntry], list[SourceEntry]]:
    """Ordinary noise clips (each kind ``noises_per_type`` times) and wind clips for one split."""
    rng = np.random.default_rng([seed, s_idx, NOISE_SALT])
    n = int(mini.noise_duration_sec * NOISE_SR)
    talkers = [load_audio(root / e.path) for e in speech]
    noise, wind = [], []
    for kind in N.NOISE_KINDS:
        for k in range(mini.noises_per_type):
            if kind == "babble":
                clip = N.babble(n, NOISE_SR, rng, talkers, (mini.babble_talkers[0], mini.babble_talkers[1]))
            else:
                clip = getattr(N, kind)(n, NOISE_SR, rng)
            uid = f"noise_{split}_{kind}_{k:02d}"
            save_audio(root / f"sources/audio/noise/{split}/{uid}.flac", clip, NOISE_SR)
            noise.append(SourceEntry(uid, NOISE_SR, f"sources/audio/noise/{split}/{uid}.flac"))
    for k in range(mini.noises_per_type):
        uid = f"wind_noise_{split}_{k:02d}"
        save_audio(root / f"sources/audio/noise/{split}/{uid}.flac", N.wind(n, NOISE_SR, rng), NOISE_SR)
        wind.append(SourceEntry(uid, NOISE_SR, f"sources/audio/noise/{split}/{uid}.flac"))
    return noise, wind


def make_rirs(root: Path, split: str, s_idx: int, mini: MiniParams, seed: int, pool: ProcessPoolExecutor | None
              ) -> list[SourceEntry]:
    """A split's RIR pool (shoebox rooms, RT60 drawn in range), computed on the pool when given."""
    rng = np.random.default_rng([seed, s_idx, RIR_SALT])
    n = getattr(mini.n_rirs, split)
    args = [(mini.rir_sample_rate, float(rng.uniform(*mini.rt60_sec)), tuple(mini.room_size_m), (seed, s_idx, RIR_SALT, k))
            for k in range(n)]
    rirs = list(pool.map(_make_rir, args)) if pool is not None else [_make_rir(a) for a in args]
    out = []
    for k, h in enumerate(rirs):
        path = f"sources/audio/rir/{split}/rir_{split}_{k:02d}.flac"
        save_audio(root / path, h, mini.rir_sample_rate, subtype="PCM_24")
        out.append(SourceEntry(f"rir_{split}_{k:02d}", mini.rir_sample_rate, path))
    return out


def build_mini(root: Path, mini: MiniParams, sim: SimulationParams, seed: int, workers: int) -> dict[str, int]:
    """Write the whole mini dataset under ``root`` (which should be empty); returns utterances per split."""
    with pin_threads(SYNTH_THREADS):
        return _build_mini(root, mini, sim, seed, workers)


def _build_mini(root: Path, mini: MiniParams, sim: SimulationParams, seed: int, workers: int) -> dict[str, int]:
    jobs = plan_speech(mini, seed)
    every = [j for split in SPLITS for j in jobs[split]]
    pool = ProcessPoolExecutor(workers, initializer=_init_synth, initargs=(root, mini, sim)) if workers > 1 else None
    try:
        if pool is None:
            _init_synth(root, mini, sim)
            for job in tqdm(every, desc="synthesise speech", unit="utt"):
                _make_speech(job)
        else:
            for _ in tqdm(pool.map(_make_speech, every, chunksize=4), total=len(every), desc="synthesise speech",
                          unit="utt"):
                pass
        counts = {}
        truth: dict[str, str] = {}
        for s_idx, split in enumerate(SPLITS):
            speech = [SourceEntry(j.uid, j.fs, j.path) for j in jobs[split]]
            noise, wind = make_noises(root, split, s_idx, speech, mini, seed)
            rirs = make_rirs(root, split, s_idx, mini, seed, pool)
            src_dir = root / "sources" / split
            write_source_list(src_dir / "speech.scp", speech)
            write_source_list(src_dir / "noise.scp", noise)
            write_source_list(src_dir / "wind_noise.scp", wind)
            write_source_list(src_dir / "rirs.scp", rirs)
            write_kv(src_dir / "utt2spk", {j.uid: j.speaker.speaker_id for j in jobs[split]})
            write_kv(src_dir / "text", {j.uid: j.text for j in jobs[split]})
            write_kv(src_dir / "utt2lang", {j.uid: j.language for j in jobs[split]})
            sources = Sources.from_lists(root, [f"sources/{split}/speech.scp"], [f"sources/{split}/noise.scp"],
                                         [f"sources/{split}/wind_noise.scp"], [f"sources/{split}/rirs.scp"],
                                         [f"sources/{split}/utt2spk"], [f"sources/{split}/text"],
                                         [f"sources/{split}/utt2lang"])
            rows = plan_simulation(sources, sim, f"simulation_{split}", salt=s_idx, id_prefix=f"{split}_",
                                   n_speech_free=n_speech_free(mini, split))
            failed = render_all(rows, sources, sim, root, workers, desc=f"simulate {split}")
            if failed:
                raise RenderError(f"mini {split}: {len(failed)} utterances failed, e.g. {next(iter(failed.values()))}")
            write_lists(rows, sources.utt2lang, root / "lists" / split, root / f"simulation_{split}" / "log" / "meta.tsv")
            defect_of = {j.uid: j.defect for j in jobs[split]}
            truth.update({r["id"]: defect_of.get(r["speech_uid"], NONE) for r in rows})
            counts[split] = len(rows)
    finally:
        if pool is not None:
            pool.shutdown()
    write_reference_truth(root / REFERENCE_TRUTH, truth)
    write_checksums(root)
    return counts


def write_checksums(root: Path) -> None:
    """sha256sum-format list of every file under ``root`` (relative paths, sorted)."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUM_FILE)
    with atomic_open(root / CHECKSUM_FILE) as f:
        for p in files:
            f.write(f"{sha256_file(p)}  {p.relative_to(root).as_posix()}\n")
