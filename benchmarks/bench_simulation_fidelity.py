"""Fidelity of our simulator against the official URGENT 2026 scripts, row for row; prints JSON.

Synthetic sources (harmonic speech-like bursts with pauses, coloured noise longer than the speech, gusty
wind named ``wind_noise_*``, decaying RIRs) at all seven rates; meta rows covering every distortion at
every rate, drawn with our plan's parameter ranges; the official ``simulation/simulate_data_from_param.py``
(run unmodified from ``--official-checkout`` with ``--official-python``, ``--highpass True`` as the official
recipe) and ``curator.datasets.simulation.render.render_row`` render the same rows. Reported per row and per
distortion: the SNR of the difference (official / (ours - official)) of noisy and clean; for codec rows also
the log-spectral distance in dB. Rows the official run cannot render are listed under ``failures``.

The official Python needs librosa, resampy, espnet2 (``detect_non_silence``), torchaudio (``torchaudio.io``
for codec rows) and an ``ffmpeg`` on PATH with ``sidechaincompress``/``amix`` (wind rows). Codec rows run
in their own official call so that a missing torchaudio codec binding fails only those rows.

  python benchmarks/bench_simulation_fidelity.py --official-checkout third_party/urgent2026_challenge_track1 \\
      --official-python /path/to/python --per-rate 10
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from curator.config import load_params, parse
from curator.datasets.kaldi import NONE, read_source_lists
from curator.datasets.params import SimulationParams
from curator.datasets.simulation import distortions as D
from curator.datasets.simulation.render import apply_augmentation, render_row
from curator.datasets.simulation.sources import Sources

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
KINDS = ("noise", "reverb", "wind", "wind_reverb", "bandwidth_kaiser_best", "bandwidth_kaiser_fast",
         "bandwidth_scipy", "bandwidth_polyphase", "clipping", "packet_loss", "codec_mp3", "codec_vorbis",
         "codec_opus")
HEADERS = ("id", "noisy_path", "speech_uid", "speech_sid", "clean_path", "noise_uid", "snr_dB", "rir_uid",
           "augmentation", "fs", "length", "text")


def _speech(sr: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    f0 = rng.uniform(100, 220) + 30 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 16) if k * 250 < sr / 2)
    gate = (np.sin(2 * np.pi * rng.uniform(1, 2) * t + rng.uniform(0, 6)) > -0.3).astype(float)
    return 0.3 * voiced * gate + 0.001 * rng.standard_normal(len(t))


def _noise(sr: int, seconds: float, rng: np.random.Generator, wind: bool) -> np.ndarray:
    from scipy.signal import lfilter
    x = rng.standard_normal(int(sr * seconds))
    if wind:  # low-passed, gusty
        x = lfilter([1.0], [1.0, -0.995], x) * (0.2 + np.abs(np.sin(2 * np.pi * 0.4 * np.arange(len(x)) / sr)))
    else:
        x = lfilter([1.0], [1.0, -0.7], x)
    return 0.5 * x / np.max(np.abs(x))


def _rir(sr: int, rng: np.random.Generator) -> np.ndarray:
    n = int(0.4 * sr)
    h = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.06 * sr))
    h[: int(0.002 * sr)] = 0.0
    h[int(0.002 * sr)] = 1.5
    return h / np.max(np.abs(h))


def make_sources(root: Path, seed: int) -> dict[str, Path]:
    """Write one speech, noise, wind and RIR file per rate and their official ``uid fs path`` lists."""
    rng = np.random.default_rng(seed)
    lists: dict[str, list[str]] = {"speech": [], "noise": [], "wind": [], "rir": []}
    for sr in RATES:
        for k in range(2):
            for kind, x in (("speech", _speech(sr, 2.5 + 0.5 * k, rng)), ("noise", _noise(sr, 6.0, rng, False)),
                            ("wind", _noise(sr, 6.0, rng, True)), ("rir", _rir(sr, rng))):
                uid = f"wind_noise_{sr}_{k}" if kind == "wind" else f"{kind}_{sr}_{k}"
                path = root / "sources" / f"{uid}.flac"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(str(path), x, sr, subtype="PCM_24")
                lists[kind].append(f"{uid} {sr} {path}")
    out = {}
    for kind, lines in lists.items():
        out[kind] = root / f"{kind}.scp"
        out[kind].write_text("\n".join(lines) + "\n")
    utt2spk = root / "utt2spk"
    utt2spk.write_text("".join(f"{line.split()[0]} spk\n" for line in lists["speech"]))
    out["utt2spk"] = utt2spk
    return out


def make_rows(sim: SimulationParams, out_dir: Path, per_rate: int, seed: int, lengths: dict[str, int]
              ) -> list[dict[str, str]]:
    """``per_rate`` rows per rate, cycling through the distortion kinds (offset per rate so all appear)."""
    rng = np.random.default_rng(seed + 1)
    rows = []
    w = sim.wind
    for ri, sr in enumerate(RATES):
        for j in range(per_rate):
            kind = KINDS[(ri * per_rate + j) % len(KINDS)]
            count = len(rows) + 1
            speech = f"speech_{sr}_{j % 2}"
            rir = f"rir_{sr}_{j % 2}" if kind in ("reverb", "wind_reverb") or rng.random() < 0.3 else NONE
            noise, augs = f"noise_{sr}_{j % 2}", []
            snr = float(rng.uniform(*sim.snr_db))
            if kind.startswith("wind"):
                noise, snr = f"wind_noise_{sr}_{j % 2}", float(rng.uniform(*sim.wind_snr_db))
                v = {k: float(rng.uniform(*getattr(w, k))) for k in ("threshold", "ratio", "attack_ms", "release_ms",
                                                                     "sc_gain", "clipping_threshold")}
                augs.append(f"wind_noise(threshold={v['threshold']},ratio={v['ratio']},attack={v['attack_ms']},"
                            f"release={v['release_ms']},sc_gain={v['sc_gain']},clipping={rng.random() < 0.75},"
                            f"clipping_threshold={v['clipping_threshold']})")
            elif kind.startswith("bandwidth"):
                lower = [r for r in RATES if r < sr] or [sr]
                method = kind.split("_", 1)[1] if lower != [sr] else "none"
                augs.append(f"bandwidth_limitation-{method}->{lower[int(rng.integers(len(lower)))]}")
            elif kind == "clipping":
                augs.append(f"clipping(min={rng.uniform(0, 0.1)},max={rng.uniform(0.9, 1.0)})")
            elif kind == "packet_loss":
                idx = D.packet_loss_indices(lengths[speech], sr, 20, float(rng.uniform(0.05, 0.25)), 10, rng)
                augs.append(f"packet_loss(packet_loss_indices={idx},packet_duration_ms=20)")
            elif kind == "codec_mp3":
                augs.append(f"codec(format=mp3,encoder=None,qscale={int(rng.integers(1, 10))})")
            elif kind.startswith("codec"):
                augs.append(f"codec(format=ogg,encoder={kind[6:]},qscale={int(rng.integers(-1, 10))})")
            name = f"fileid_{count}.flac"
            rows.append({"id": f"fileid_{count}", "noisy_path": str(out_dir / "noisy" / name), "speech_uid": speech,
                         "speech_sid": "spk", "clean_path": str(out_dir / "clean" / name), "noise_uid": noise,
                         "snr_dB": repr(snr), "rir_uid": rir, "augmentation": "/".join(augs) or NONE,
                         "fs": str(sr), "length": str(lengths[speech]), "text": "<not-available>", "kind": kind})
    return rows


def run_official(rows: list[dict[str, str]], lists: dict[str, Path], work: Path, checkout: Path, python: str,
                 tag: str) -> str | None:
    """Render ``rows`` with the official script; None on success, else the tail of its output."""
    log = work / f"log_{tag}"
    log.mkdir(parents=True, exist_ok=True)
    meta = log / "meta.tsv"
    meta.write_text("\t".join(HEADERS) + "\n" + "".join("\t".join(r[h] for h in HEADERS) + "\n" for r in rows))
    cfg = log / "conf.yaml"
    cfg.write_text(f"speech_scps: [{lists['speech']}]\nspeech_utt2spk: [{lists['utt2spk']}]\n"
                   f"noise_scps: [{lists['noise']}]\nwind_noise_scps: [{lists['wind']}]\nrir_scps: [{lists['rir']}]\n"
                   f"log_dir: {log}\noutput_dir: {work / 'official'}\n")
    for r in rows:
        Path(r["noisy_path"]).parent.mkdir(parents=True, exist_ok=True)
        Path(r["clean_path"]).parent.mkdir(parents=True, exist_ok=True)
    script = checkout / "simulation" / "simulate_data_from_param.py"
    cmd = [python, str(script), "--config", str(cfg), "--meta_tsv", str(meta),
           "--nj", "1", "--chunksize", "1", "--highpass", "True"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [os.environ.get("PYTHONPATH"), str(checkout)]))}
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    missing = [r["id"] for r in rows if not Path(r["noisy_path"]).is_file()]
    if done.returncode != 0 or missing:
        return f"exit {done.returncode}, {len(missing)} rows missing: {(done.stdout + done.stderr)[-600:]}"
    return None


def relocate(rows: list[dict[str, str]], old: Path, new: Path) -> list[dict[str, str]]:
    """Copies of ``rows`` writing under ``new`` instead of ``old`` (a second official run)."""
    return [{**r, **{k: str(new / Path(r[k]).relative_to(old)) for k in ("noisy_path", "clean_path")}} for r in rows]


def ffmpeg_codec(x: np.ndarray, sr: int, aug: str, ffmpeg: str, work: Path) -> np.ndarray:
    """Reference codec round trip through the ffmpeg CLI with ``-q:a qscale`` (what torchaudio's
    ``AudioEffector(format, encoder, CodecConfig(qscale))`` asks of libavcodec): libmp3lame, libvorbis (the
    native ``vorbis`` encoder the official names refuses mono) and the native ``opus``; decoded back to
    ``sr``, trimmed or zero-padded to the input length."""
    import re
    fmt, encoder, q = re.fullmatch(r"codec\(format=(.*),encoder=(.*),qscale=(-?\d+)\)", aug).groups()
    src, enc, dec = work / "codec_in.wav", work / f"codec.{fmt}", work / "codec_out.wav"
    sf.write(str(src), x, sr, subtype="FLOAT")
    # ffmpeg's native vorbis encoder takes only stereo, so a mono round trip needs libvorbis
    codec = {"None": ["-c:a", "libmp3lame"], "vorbis": ["-c:a", "libvorbis"]}.get(encoder, ["-c:a", encoder, "-strict", "-2"])
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(src), *codec, "-q:a", q, str(enc)], check=True)
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", "-i", str(enc), "-ar", str(sr), "-c:a", "pcm_f32le",
                    str(dec)], check=True)
    y, _ = sf.read(str(dec))
    return D.fit_length(y if y.ndim == 1 else y[:, 0], len(x))


def snr_of_difference(ref: np.ndarray, est: np.ndarray) -> float:
    err = float(np.sum((est - ref) ** 2))
    return float("inf") if err == 0 else 10 * np.log10(float(np.sum(ref**2)) / err)


def log_spectral_distance(ref: np.ndarray, est: np.ndarray, sr: int) -> float:
    """Mean over 32 ms frames of the RMS difference of the log power spectra (dB)."""
    import scipy.signal
    n = int(0.032 * sr)
    _, _, a = scipy.signal.stft(ref, sr, nperseg=n)
    _, _, b = scipy.signal.stft(est, sr, nperseg=n)
    la, lb = (10 * np.log10(np.abs(z) ** 2 + 1e-10) for z in (a, b))
    return float(np.mean(np.sqrt(np.mean((la - lb) ** 2, axis=0))))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official-checkout", type=Path, required=True)
    ap.add_argument("--official-python", default=sys.executable)
    ap.add_argument("--per-rate", type=int, default=10, help="rows per rate (7 rates)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--ffmpeg", default=None, help="ffmpeg CLI: codec reference when the official codec call fails")
    ap.add_argument("--official-repeats", type=int, default=2,
                    help="official runs of the non-codec rows; the 2nd measures the official's own run-to-run agreement")
    args = ap.parse_args()
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="simfid_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    sim = parse(SimulationParams, load_params(args.params)["simulation"], "simulation")
    lists = make_sources(work, args.seed)
    speech = read_source_lists([lists["speech"]])
    lengths = {u: sf.info(e.path).frames for u, e in speech.items()}
    rows = make_rows(sim, work / "official", args.per_rate, args.seed, lengths)
    failures: dict[str, str] = {}
    checkout = args.official_checkout.resolve()
    for tag, group in (("main", [r for r in rows if not r["kind"].startswith("codec")]),
                       ("codec", [r for r in rows if r["kind"].startswith("codec")])):
        if group and (err := run_official(group, lists, work, checkout, args.official_python, tag)):
            failures.update({r["id"]: f"{r['kind']} row, official: {err}" for r in group
                             if not Path(r["noisy_path"]).is_file()})
    self_snr: dict[str, float] = {}
    main = [r for r in rows if not r["kind"].startswith("codec") and r["id"] not in failures]
    for k in range(1, args.official_repeats):
        again = relocate(main, work / "official", work / f"official_run{k + 1}")
        run_official(again, lists, work, checkout, args.official_python, f"main_run{k + 1}")
        for a, b in zip(main, again, strict=True):
            if Path(b["noisy_path"]).is_file():
                x, y = sf.read(a["noisy_path"])[0], sf.read(b["noisy_path"])[0]
                self_snr[a["id"]] = min(self_snr.get(a["id"], float("inf")), round(snr_of_difference(x, y), 2))
    sources = Sources(root=work, speech=speech, noise=read_source_lists([lists["noise"]]),
                      wind=read_source_lists([lists["wind"]]), rir=read_source_lists([lists["rir"]]), lengths=lengths)
    per_row = []
    for r in rows:
        reference = "official"
        if r["id"] in failures and r["kind"].startswith("codec") and args.ffmpeg:
            reference = "ffmpeg_cli"  # our render up to the codec, then the CLI codec, vs our full render
        elif r["id"] in failures:
            continue
        try:
            noisy, clean = render_row(r, sources, sim)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports every failure by row
            failures[r["id"]] = f"{r['kind']} row, ours: {exc}"
            continue
        if reference == "official":
            off_noisy, sr = sf.read(r["noisy_path"])
            off_clean, _ = sf.read(r["clean_path"])
        else:
            sr = int(r["fs"])
            before = render_row({**r, "augmentation": NONE}, sources, sim)[0].astype(np.float64)
            noisy = apply_augmentation(before, r["augmentation"], sr)  # the codec stage alone, same input
            off_noisy, off_clean = ffmpeg_codec(before, sr, r["augmentation"], args.ffmpeg, work), clean
            failures.pop(r["id"])
        rec = {"id": r["id"], "kind": r["kind"], "fs": sr, "noisy_snr_db": round(snr_of_difference(off_noisy, noisy), 2),
               "clean_snr_db": round(snr_of_difference(off_clean, clean), 2), "reference": reference}
        if r["id"] in self_snr:
            rec["official_self_snr_db"] = self_snr[r["id"]]
        if r["kind"].startswith("codec"):
            rec["noisy_lsd_db"] = round(log_spectral_distance(off_noisy, noisy, sr), 2)
        per_row.append(rec)
    by_kind: dict[str, dict[str, float]] = {}
    for kind in KINDS:
        recs = [p for p in per_row if p["kind"] == kind]
        if recs:
            v = np.array([p["noisy_snr_db"] for p in recs])
            c = np.array([p["clean_snr_db"] for p in recs])
            by_kind[kind] = {"rows": len(recs), "rates": sorted({p["fs"] for p in recs}),
                             "noisy_snr_min": float(v.min()), "noisy_snr_median": float(np.median(v)),
                             "noisy_snr_max": float(v.max()),
                             "clean_snr_min": float(c.min())}
            own = [p["official_self_snr_db"] for p in recs if "official_self_snr_db" in p]
            if own:
                by_kind[kind]["official_vs_itself_snr_min"] = float(min(own))
            if kind.startswith("codec"):
                by_kind[kind]["noisy_lsd_median_db"] = float(np.median([p["noisy_lsd_db"] for p in recs]))
    non_codec = [p for p in per_row if not p["kind"].startswith("codec")]
    print(json.dumps({"rows": len(rows), "compared": len(per_row), "failures": failures,
                      "non_codec_min_snr_db": min((min(p["noisy_snr_db"], p["clean_snr_db"]) for p in non_codec),
                                                  default=None),
                      "non_codec_below_40db": [p for p in non_codec if min(p["noisy_snr_db"], p["clean_snr_db"]) < 40],
                      "by_distortion": by_kind, "workdir": str(work)}, indent=1))


if __name__ == "__main__":
    main()
