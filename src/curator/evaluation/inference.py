"""``curator enhance``: run a checkpoint on noisy audio without references (the blind test set, any folder) and
write what the official ``baseline_code/inference.py`` writes: ``<output_dir>/wav/<uid>.wav``, peak-normalised,
and ``<output_dir>/inf.scp`` (``uid path`` a line, sorted by uid), the list the official evaluation scripts read.

Inputs (``--input``): a Kaldi ``wav.scp`` (``uid path`` a line; relative paths are read from the working
directory, as the official script reads them), a manifest JSONL (its noisy ``path``), or a folder of audio (ids
as the folder dataset makes them). The model runs as the eval stage runs it (``eval.device``,
``eval.num_threads``, ``eval.onednn``, ``eval.peak``, ``eval.chunk_utts``), each file at its own rate: a manifest
row's output is the signal eval scored, up to ``enhance.subtype``'s quantisation. A rate outside
``dataset.sample_rates`` follows ``dataset.rate_policy`` (resample: enhanced at the lowest listed rate at or above
it, the output resampled back; reject: skipped), a multi-channel file ``dataset.channel_policy``; every output is at
its input's rate and length. A file that does not decode, or that the model cannot run on, is skipped, counted
by reason and named in ``<output_dir>/enhance.json``, with the settings and the checkpoint's sha256.

A killed run restarted with the same command keeps the files it wrote (each is written atomically) and enhances
the rest. Each written file's input (path, size, modification time, sha256 of its bytes, and the rate and channel
policy it was decoded with) is appended to ``<output_dir>/inputs.jsonl`` once the file is in place. A rerun keeps
an output whose input has the recorded path, size and modification time; one whose input moved or was touched
(a copy without ``cp -p``, a fresh checkout) is kept when the input's bytes still have the recorded sha256. It
enhances again an input whose content changed, one decoded differently (a manifest row's rate), and a file whose
input was never recorded. The folder mirrors the input list: a recorded output whose input is no longer listed is
removed. A run with another checkpoint or other settings refuses a folder written by a different one, and a folder
of files it did not write, unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from curator.audio import AudioError, fit_length, load_audio, resample, row_decoding, save_audio
from curator.config import DEFAULT_PARAMS, ConfigError, load_params, load_section
from curator.contract.manifest import ManifestError, Utterance, read_manifest, resolve_path
from curator.datasets.checks import InputPolicy, Rejection
from curator.datasets.kaldi import ListError, read_kv
from curator.datasets.recipes.folder import AUDIO_SUFFIXES, utt_id_of
from curator.evaluation.cli import make_enhancer
from curator.evaluation.enhance import SCP_NAME, Enhancer, peak_normalize
from curator.evaluation.evaluate import _enhance
from curator.io import atomic_open, read_json, sha256_file, write_json
from curator.training.backends.official import OfficialBaselineError
from curator.training.checkpoint import CheckpointError

REPORT = "enhance.json"
SCP = SCP_NAME
INPUTS = "inputs.jsonl"  # a line per written output: utt_id, its input's path, size, mtime_ns, sha256, sr, channels
WAV_DIR = "wav"
HEADER_WORKERS = 8  # threads reading file headers (I/O bound)
UNSAFE_ID_CHARS = ("/", "\\", "\0")


class EnhanceInputError(ValueError):
    """The input list or folder cannot be read, or its ids cannot name output files."""


@dataclass(frozen=True)
class Skip:
    """An input left without output, and why."""

    utt_id: str
    path: str
    reason: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"utt_id": self.utt_id, "path": self.path, "reason": self.reason, "detail": self.detail}


def _check_ids(ids: Sequence[str], where: str) -> None:
    """Each id names a file ``wav/<id>.<format>`` and a line of inf.scp: no separator, no whitespace, not hidden."""
    bad = [u for u in ids if not u or u.startswith(".") or any(c in u for c in UNSAFE_ID_CHARS)
           or len(u.split()) != 1]
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise EnhanceInputError(f"{len(bad)} id(s) of {where} cannot name an output file: "
                                f"{', '.join(repr(u) for u in bad[:5])}{more}; ids must be non-empty, hold no "
                                "whitespace or path separator and not start with '.'")
    dup = sorted(u for u, n in Counter(ids).items() if n > 1)
    if dup:
        raise EnhanceInputError(f"{where}: id(s) {', '.join(map(repr, dup[:5]))} appear more than once")


def _folder_entries(root: Path, exclude: Path | None) -> list[tuple[str, str]]:
    """(utt_id, path) of every audio file under ``root`` (hidden ones, and those under ``exclude``, the output
    folder, excepted), ids as the folder dataset makes them."""
    skip = exclude.resolve() if exclude is not None else None
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(root).parts)
                   and not (skip is not None and p.resolve().is_relative_to(skip)))
    seen: dict[str, Path] = {}
    for f in files:
        uid = utt_id_of(f.relative_to(root))
        if uid in seen:
            raise EnhanceInputError(f"'{f}' and '{seen[uid]}' map to the same id '{uid}'; rename one of them")
        seen[uid] = f
    return [(u, str(p)) for u, p in seen.items()]


def _header_or_error(path: str) -> tuple[int, int] | str:
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError, ValueError) as exc:
        return f"cannot decode '{path}': {exc}"
    return int(info.samplerate), int(info.channels)


def read_inputs(spec: str, sample_rates: Sequence[int], rate_policy: str, channel_policy: str,
                exclude: Path | None = None, root: Path | None = None
                ) -> tuple[pd.DataFrame, list[Skip], dict[str, Any]]:
    """Rows to enhance (``utt_id``, ``path``, ``sr`` the model runs at, ``custom`` as manifest rows record how to
    decode), the inputs skipped before any model runs, and what the rate and channel policies did. A folder's
    files under ``exclude`` (the output folder, when it lies inside the input) are no inputs; a wav.scp's relative
    paths are read from ``root`` (None: the working directory)."""
    src = Path(spec)
    if src.is_file() and src.suffix == ".jsonl":
        rows = read_manifest(src)
        _check_ids([str(u) for u in rows["utt_id"]], f"manifest '{src}'")
        if "custom" not in rows.columns:
            rows["custom"] = [{}] * len(rows)
        rows["path"] = [str(resolve_path(p)) for p in rows["path"]]
        return rows[["utt_id", "path", "sr", "custom"]].reset_index(drop=True), [], {"from": "manifest"}
    if src.is_dir():
        entries = _folder_entries(src, exclude)
    elif src.is_file():
        try:
            table = read_kv(src)
        except ListError as exc:
            raise EnhanceInputError(str(exc)) from exc
        entries = [(u, p if root is None or Path(p).is_absolute() else str(root / p)) for u, p in table.items()]
    else:
        raise EnhanceInputError(f"input '{spec}' does not exist (give a wav.scp, a manifest .jsonl or a folder)")
    if not entries:
        raise EnhanceInputError(f"input '{spec}' lists no audio file ({', '.join(AUDIO_SUFFIXES)} in a folder)")
    _check_ids([u for u, _ in entries], f"'{spec}'")
    skipped: list[Skip] = []
    utts: list[Utterance] = []
    with ThreadPoolExecutor(HEADER_WORKERS) as pool:
        headers = list(pool.map(_header_or_error, [p for _, p in entries]))
    for (uid, path), head in zip(entries, headers, strict=True):
        if path.rstrip().endswith("|"):
            skipped.append(Skip(uid, path, "undecodable", "a piped command, not a file: write the audio to files"))
        elif isinstance(head, str):
            skipped.append(Skip(uid, path, "undecodable", head))
        else:
            utts.append(Utterance(utt_id=uid, path=path, duration_sec=0.0, sr=head[0], language="", distortion="",
                                  split="enhance"))
    policy = InputPolicy(sample_rates, rate_policy, channel_policy, HEADER_WORKERS)
    rejected: list[Rejection] = []
    kept = list(policy.apply(utts, rejected))
    why = {"multichannel": "a multi-channel file and dataset.channel_policy is reject",
           "unsupported_rate": f"a rate outside dataset.sample_rates {list(sample_rates)} and dataset.rate_policy "
                               "is reject"}
    skipped += [Skip(r.utt_id, r.path, r.reason, why.get(r.reason, r.reason)) for r in rejected]
    rows = pd.DataFrame({"utt_id": [u.utt_id for u in kept], "path": [u.path for u in kept],
                         "sr": [u.sr for u in kept], "custom": [u.custom for u in kept]})
    return rows, skipped, policy.summary(max_examples=0)


def _prepare_output(out: Path, fingerprint: dict[str, Any], overwrite: bool) -> None:
    """Make ``out`` ready: a folder this checkpoint and these settings wrote is resumed, anything else refused
    (or, with ``overwrite``, its ``wav/``, ``inf.scp`` and ``enhance.json`` removed). Temporary files of a killed
    writer are removed."""
    report, wav = out / REPORT, out / WAV_DIR
    previous = read_json(report) if report.is_file() else None
    theirs = previous.get("fingerprint") if isinstance(previous, dict) else None
    foreign = [p for p in wav.iterdir() if p.is_file() and not p.name.startswith(".")] if wav.is_dir() else []
    if theirs != fingerprint and (previous is not None or foreign):
        if not overwrite:
            if theirs is None:
                problem = f"'{wav}' holds {len(foreign)} file(s) that no enhance run recorded"
            else:
                changed = sorted(k for k in set(fingerprint) | set(theirs) if fingerprint.get(k) != theirs.get(k))
                problem = f"'{out}' was written with other settings ({', '.join(changed)} differ)"
            raise EnhanceInputError(f"{problem}; choose another --output_dir, or pass --overwrite to replace them")
        shutil.rmtree(wav, ignore_errors=True)
        for name in (SCP, REPORT, INPUTS):
            (out / name).unlink(missing_ok=True)
    wav.mkdir(parents=True, exist_ok=True)
    for tmp in wav.glob(".*.tmp"):  # atomic_path's temporary files, left by a killed run
        tmp.unlink()
    write_json(report, {"status": "running", "fingerprint": fingerprint})


def input_stamp(path: str) -> dict[str, Any] | None:
    """What identifies an input's content without reading it (as make and DVC's state do): its absolute path,
    size and modification time in nanoseconds; None when it cannot be stat-ed."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def decoding_stamp(path: str, sr: int, channels: str) -> dict[str, Any] | None:
    """:func:`input_stamp` with the rate the input is enhanced at and its channel policy (a manifest row's
    decoding can change while its file does not); None when the file cannot be stat-ed."""
    stamp = input_stamp(path)
    return None if stamp is None else {**stamp, "sr": int(sr), "channels": channels}


def same_input(recorded: dict[str, Any] | None, stamp: dict[str, Any] | None, path: str) -> str | None:
    """Whether an output recorded as written from ``recorded`` came from the input ``stamp`` describes now:
    ``"stamp"`` when path, size and modification time match (nothing read), ``"content"`` when only the path or
    the time differs but the file's sha256 is the recorded one (moved, copied, touched), else None. The rate and
    channel policy must match either way."""
    if recorded is None or stamp is None:
        return None
    if {k: v for k, v in recorded.items() if k != "sha256"} == stamp:
        return "stamp"
    fixed = ("size", "sr", "channels")
    if "sha256" in recorded and all(recorded.get(k) == stamp[k] for k in fixed):
        try:
            if sha256_file(path) == recorded["sha256"]:
                return "content"
        except OSError:
            return None
    return None


def _with_sha256(stamp: dict[str, Any] | None, path: str) -> dict[str, Any] | None:
    """``stamp`` with the sha256 of the file's bytes (none when it cannot be read again: then only the stamp
    identifies it)."""
    if stamp is None:
        return None
    try:
        return {**stamp, "sha256": sha256_file(path)}
    except OSError:
        return stamp


def read_input_log(path: Path) -> dict[str, dict[str, Any]]:
    """utt_id -> the stamp of the input its output was written from (the last record wins). A line a killed writer
    left unfinished is ignored: its output counts as unrecorded and is written again."""
    records: dict[str, dict[str, Any]] = {}
    if not path.is_file():
        return records
    # records are ASCII (json.dumps escapes the rest): undecodable bytes are damage, and their line is ignored
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and isinstance(rec.get("utt_id"), str):
            records[rec["utt_id"]] = {k: v for k, v in rec.items() if k != "utt_id"}
    return records


class _InputLog:
    """Appends one line per written output, flushed at once, after the output file is in place."""

    def __init__(self, path: Path) -> None:
        self._f = open(path, "a+b")  # noqa: SIM115 (closed by close())
        size = self._f.seek(0, os.SEEK_END)
        if size:
            self._f.seek(size - 1)
            if self._f.read(1) != b"\n":  # a line a killed writer left unfinished: end it, so the next record
                self._f.write(b"\n")      # stands alone (appends go to the end whatever the position)

    def add(self, uid: str, stamp: dict[str, Any] | None) -> None:
        if stamp is not None:
            self._f.write((json.dumps({"utt_id": uid, **stamp}, sort_keys=True) + "\n").encode("ascii"))
            self._f.flush()

    def close(self) -> None:
        self._f.close()


def write_input_log(path: Path, records: dict[str, dict[str, Any]]) -> None:
    """Replace the record (atomically) by one line per output the folder holds now, sorted by utt_id: a finished
    run's record names exactly the outputs of its list."""
    with atomic_open(path) as f:
        f.writelines(json.dumps({"utt_id": uid, **records[uid]}, sort_keys=True) + "\n" for uid in sorted(records))


def remove_unlisted(out: Path, fmt: str, listed: set[str], recorded: dict[str, dict[str, Any]]) -> list[str]:
    """Remove the outputs in ``recorded`` (:func:`read_input_log`) whose input is no longer in the list (the folder
    mirrors its list, and ``inf.scp`` would not name them); returns their utt_ids. Files no run recorded are left
    alone."""
    removed = []
    for uid in sorted(set(recorded) - listed):
        target = out / WAV_DIR / f"{uid}.{fmt}"
        if target.is_file():
            target.unlink()
            removed.append(uid)
    return removed


def enhance_rows(rows: pd.DataFrame, enhancer: Enhancer, out: Path, fmt: str, subtype: str, peak: float,
                 chunk_utts: int, recorded: dict[str, dict[str, Any]]
                 ) -> tuple[dict[str, str], list[Skip], dict[str, float], dict[str, dict[str, Any]]]:
    """Enhance every row without an output written from its input as it is now (``recorded``: the folder's input
    record, :func:`read_input_log`); returns ``{utt_id: output path}``
    (written now or by an earlier run), the rows skipped, counts (``written``, ``reused``, ``reused_by_content``:
    kept because the input's bytes match although it moved or was touched, ``redone``: outputs written again because
    their input changed or was never recorded, ``audio_sec`` enhanced now) and the input record of every output
    returned."""
    written: dict[str, str] = {}
    records: dict[str, dict[str, Any]] = {}
    skipped: list[Skip] = []
    stats = {"written": 0, "reused": 0, "reused_by_content": 0, "redone": 0, "audio_sec": 0.0}
    stale: set[str] = set()
    log = _InputLog(out / INPUTS)
    bar = tqdm(total=len(rows), desc="enhance", unit="utt")
    try:
        for lo in range(0, len(rows), chunk_utts):
            chunk = rows.iloc[lo:lo + chunk_utts]
            loaded: dict[int, tuple[np.ndarray, np.ndarray, int, dict[str, Any] | None]] = {}
            for i, row in chunk.iterrows():
                uid, target = str(row["utt_id"]), out / WAV_DIR / f"{row['utt_id']}.{fmt}"
                target_sr, channels = row_decoding(row)
                stamp = decoding_stamp(str(row["path"]), int(row["sr"]), channels)
                if target.is_file():
                    match = same_input(recorded.get(uid), stamp, str(row["path"]))
                    if match is not None:
                        written[uid] = str(target)
                        records[uid] = {**stamp, "sha256": recorded[uid]["sha256"]} if match == "content" \
                            else recorded[uid]
                        if match == "content":  # the input's new path and time, so the next run reads nothing
                            log.add(uid, records[uid])
                        stats["reused"] += 1
                        stats["reused_by_content"] += match == "content"
                        bar.update()
                        continue
                    target.unlink()  # written from another input: never left beside a new list
                    stale.add(uid)
                try:
                    x0, file_sr = load_audio(row["path"], channels=channels)
                    stamp = _with_sha256(stamp, str(row["path"]))
                    if target_sr is None and file_sr != int(row["sr"]):
                        raise AudioError(f"'{row['path']}' is {file_sr} Hz but its row says {row['sr']} Hz")
                    # decoded as load_audio(path, sr=row's rate) decodes it for eval, the file's own rate kept beside
                    loaded[i] = (x0, np.ascontiguousarray(resample(x0, file_sr, int(row["sr"])), dtype=np.float32),
                                 file_sr, stamp)
                except AudioError as exc:
                    skipped.append(Skip(uid, str(row["path"]), "undecodable", str(exc)))
                    tqdm.write(f"skip {uid}: {exc}")
                    bar.update()
            if loaded:
                enhancer.prepare(chunk.loc[list(loaded)])
            for i, (x0, x, file_sr, stamp) in loaded.items():
                row = chunk.loc[i]
                uid = str(row["utt_id"])
                bar.update()
                try:
                    raw = _enhance(enhancer, uid, x, int(row["sr"]))
                except AudioError as exc:
                    skipped.append(Skip(uid, str(row["path"]), "enhancement_failed", str(exc)))
                    tqdm.write(f"skip {uid}: {exc}")
                    continue
                if file_sr != int(row["sr"]):  # back to the input's own rate and length
                    raw = fit_length(resample(raw, int(row["sr"]), file_sr), len(x0))
                target = out / WAV_DIR / f"{uid}.{fmt}"
                save_audio(target, peak_normalize(raw, peak), file_sr, subtype=subtype)
                log.add(uid, stamp)
                written[uid] = str(target)
                if stamp is not None:
                    records[uid] = stamp
                stats["written"] += 1
                stats["redone"] += uid in stale
                stats["audio_sec"] += len(x0) / file_sr
    finally:
        log.close()
        bar.close()
    return written, skipped, stats, records


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="curator enhance", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  curator enhance --ckpt models/mini_bsrnn/best.ckpt --input blind_test/wav.scp --output_dir exp/blind\n"
               "  curator enhance --ckpt models/mini_bsrnn/best.ckpt --input my_noisy_folder --output_dir exp/mine "
               "enhance.format=flac\n"
               "  curator enhance --ckpt models/mini_bsrnn/best.ckpt --input data/manifests/mini/test.jsonl "
               "--output_dir exp/test enhance.subtype=FLOAT")
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: %(default)s)")
    ap.add_argument("--ckpt", required=True,
                    help="checkpoint: this project's (models/<exp>/best.ckpt) or an official baseline one")
    ap.add_argument("--input", "--input_scp", dest="input", required=True,
                    help="a Kaldi wav.scp (uid path), a manifest .jsonl, or a folder of audio")
    ap.add_argument("--root", default=None,
                    help="folder a wav.scp's relative paths are read from (default: the working directory, as the "
                         "official inference.py reads them; official lists are relative to where the simulation ran)")
    ap.add_argument("--output_dir", required=True, help="writes <output_dir>/wav/<uid>.<format>, inf.scp, enhance.json")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace outputs written by another checkpoint or settings (default: refuse)")
    ap.add_argument("overrides", nargs="*", help="dotted params overrides, e.g. enhance.format=flac eval.device=cuda")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output_dir)
    try:
        cfg = load_params(args.config, args.overrides)
        params = load_section("enhance", cfg=cfg)
        ev = load_section("eval", cfg=cfg, plugins=False)
        ds = load_section("dataset", cfg=cfg)
        ckpt = Path(args.ckpt)
        if not ckpt.is_file():
            raise CheckpointError(f"checkpoint '{ckpt}' does not exist")
        rows, skipped, policies = read_inputs(args.input, ds.sample_rates, ds.rate_policy, ds.channel_policy,
                                               exclude=out, root=Path(args.root) if args.root else None)
        fingerprint = {"checkpoint_sha256": sha256_file(ckpt), "format": params.format, "subtype": params.subtype,
                       "peak": ev.peak, "device": ev.device, "onednn": ev.onednn, "num_threads": ev.num_threads,
                       "sample_rates": sorted(ds.sample_rates), "rate_policy": ds.rate_policy,
                       "channel_policy": ds.channel_policy}
        torch.set_num_threads(ev.num_threads)
        torch.backends.mkldnn.enabled = ev.onednn  # as eval: ATen's own kernels give the same output on every CPU
        enhancer = make_enhancer(ckpt, cfg, ev.device)
        _prepare_output(out, fingerprint, args.overwrite)
    except (ConfigError, CheckpointError, ManifestError, OfficialBaselineError, EnhanceInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for skip in skipped:  # an output written from an input that no longer decodes must not outlive it
        (out / WAV_DIR / f"{skip.utt_id}.{params.format}").unlink(missing_ok=True)
    recorded = read_input_log(out / INPUTS)
    removed = remove_unlisted(out, params.format, set(rows["utt_id"]) | {s.utt_id for s in skipped}, recorded)
    start = time.perf_counter()
    try:
        written, failed, stats, records = enhance_rows(rows, enhancer, out, params.format, params.subtype, ev.peak,
                                                       ev.chunk_utts, recorded)
    except OfficialBaselineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - start
    n_inputs = len(rows) + len(skipped)
    skipped = sorted(skipped + failed, key=lambda s: s.utt_id)
    with atomic_open(out / SCP) as f:  # uid path, as inference.py writes it
        f.writelines(f"{u} {written[u]}\n" for u in sorted(written))
    write_input_log(out / INPUTS, records)
    write_json(out / REPORT, {
        "status": "done", "fingerprint": fingerprint, "checkpoint": str(ckpt), "input": args.input,
        "n_inputs": n_inputs, "n_outputs": len(written), "n_written": stats["written"], "n_reused": stats["reused"],
        "n_reused_by_content": stats["reused_by_content"], "n_redone": stats["redone"], "n_removed": len(removed),
        "removed": removed, "n_skipped": len(skipped),
        "skipped_by_reason": dict(sorted(Counter(s.reason for s in skipped).items())),
        "skipped": [s.as_dict() for s in skipped], "policies": policies})
    by_reason = ", ".join(f"{n} {r}" for r, n in sorted(Counter(s.reason for s in skipped).items()))
    speed = f"; {stats['audio_sec']:.1f} s of audio in {seconds:.1f} s ({stats['audio_sec'] / seconds:.1f}x realtime)" \
        if stats["written"] and seconds > 0 else ""
    redone = f" ({stats['redone']} of them again: input changed or unrecorded)" if stats["redone"] else ""
    by_content = f" ({stats['reused_by_content']} of them by content: input moved or touched)" \
        if stats["reused_by_content"] else ""
    print(f"enhance: {stats['written']} written{redone}, {stats['reused']} kept from an earlier run{by_content}, "
          f"{len(skipped)} skipped"
          f"{f' ({by_reason})' if skipped else ''}"
          f"{f', {len(removed)} removed (input no longer listed)' if removed else ''} -> {out / SCP}{speed}")
    if not written:
        print(f"error: no input could be enhanced (see {out / REPORT})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
