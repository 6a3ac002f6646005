"""``verify``: sha256 checksums of listed files, decodability, and lengths that match the lists."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from tqdm import tqdm

from curator.datasets.kaldi import ListError
from curator.datasets.official import CheckConfig, Rejection, iter_split
from curator.io import sha256_file

CHUNKSIZE = 16


def read_checksums(path: Path) -> dict[str, str]:
    """sha256sum-format file -> ``{relative path: hex digest}`` (malformed lines name file:line)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            digest, sep, name = line.rstrip("\n").partition("  ")
            if not sep or len(digest) != 64:
                raise ListError(f"{path}:{lineno}: expected '<sha256>  <path>', got {line.strip()!r}")
            out[name] = digest
    return out


def verify_checksums(checksum_file: Path, root: Path, workers: int) -> dict:
    """Recompute every listed file's sha256 (relative to ``root``); report missing and mismatched ones."""
    expected = read_checksums(checksum_file)
    names = sorted(expected)
    present = [n for n in names if (root / n).is_file()]
    missing = [n for n in names if not (root / n).is_file()]
    paths = [str(root / n) for n in present]
    if workers > 1 and len(paths) > CHUNKSIZE:
        with ProcessPoolExecutor(workers) as pool:
            digests = list(tqdm(pool.map(sha256_file, paths, chunksize=CHUNKSIZE), total=len(paths),
                                desc="sha256", unit="file"))
    else:
        digests = [sha256_file(p) for p in tqdm(paths, desc="sha256", unit="file")]
    mismatched = [n for n, d in zip(present, digests, strict=True) if d != expected[n]]
    return {"listed": len(names), "missing": missing, "mismatched": mismatched,
            "ok": not missing and not mismatched}


def verify_split(split: str, list_dir: Path, meta_tsv: Path | None, root: Path, checks: CheckConfig,
                 max_examples: int) -> dict:
    """Decode every noisy/clean file of a split and compare rates and lengths with the lists."""
    decode = CheckConfig("decode", checks.silence_peak, checks.workers)
    rejected: list[Rejection] = []
    n_ok = sum(1 for _ in iter_split(split, list_dir, meta_tsv, root, "verify", decode, rejected))
    reasons = Counter(r.reason for r in rejected)
    return {"utterances": n_ok + len(rejected), "ok": not rejected, "rejected": dict(sorted(reasons.items())),
            "examples": [f"{r.path}: {r.reason}" for r in rejected[:max_examples]]}
