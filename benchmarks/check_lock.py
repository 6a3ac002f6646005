"""Check that the stages reproduced the committed dvc.lock: same output hashes, byte for byte.

Run after a fresh ``dvc repro`` of those stages (CI, `make check-lock`)::

    python benchmarks/check_lock.py                       # prepare..select, sources..source_simulate, the
                                                          # efficacy matrix's cmp_select cells and one of its
                                                          # training cells with its evaluation, vs HEAD
    python benchmarks/check_lock.py --rev origin/main --stages prepare,manifest

The expected hashes come from ``git show <rev>:dvc.lock`` (stages.<name>.outs[].md5), the actual ones are
computed from the workspace files the way DVC computes them (file md5; a directory's md5 is that of its
sorted ``[{"md5", "relpath"}]`` JSON listing, suffixed ``.dir``), so a ``dvc repro`` that rewrote the
working dvc.lock cannot hide a difference. For a directory that differs, the expected listing is read from
the DVC cache (``.dvc/cache/files/md5/xx/yyyy.dir`` or the older ``.dvc/cache/xx/yyyy.dir``) or, on a fresh
clone whose cache never held it (CI), from ``benchmarks/lock_listings.json`` at the same revision, and the
first differing file is named. That file keeps the listing of every directory output of the data stages,
keyed by its hash, so an entry is only ever used for the hash it belongs to; after a ``dvc repro`` that
changed them, refresh it with ``python benchmarks/check_lock.py --write-listings`` and commit it with the lock
(``tests/test_lock_listings.py`` fails while one is missing). Metrics files declared ``cache: false`` (timings, not data) are skipped unless
``--include-metrics``. Exit status: 0 all equal, 1 a difference, 2 the check itself could not run.
"""

from __future__ import annotations

import argparse
import configparser
import fnmatch
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DATA_STAGES = ("prepare", "manifest", "probe", "score", "select", "sources", "source_score", "source_select",
               "source_simulate")
MATRIX_DATA_GROUPS = ("cmp_select",)
"""Matrix stage groups whose cells are data (the efficacy matrix's curated lists and simulated pairs, pinned as
the data stages are): every ``<group>@<cell>`` of the lock is checked with the data stages."""
TRAINED_STAGES = ("cmp_train@random-0.25-0", "cmp_eval@random-0.25-0")
"""One training cell of the efficacy matrix and its evaluation: float32 torch work, pinned and portable since
the fused AdamW and oneDNN off (README, "Reproducibility"); CI reruns this pair, the cheapest check that training
and evaluation reproduce on its CPU (the train and eval stages run the same code, at 300 steps and more metrics)."""
DIR_SUFFIX = ".dir"
CHUNK = 1 << 20
ALWAYS_IGNORED = (".gitignore", ".dvcignore")
"""Names DVC leaves out of a directory's listing."""
LISTINGS = "benchmarks/lock_listings.json"
"""Committed listings of the data stages' directory outputs, ``{dir md5: [{"md5", "relpath"}, ...]}``."""


@dataclass(frozen=True)
class Mismatch:
    stage: str
    path: str
    expected: str | None
    actual: str | None
    detail: str


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def dvcignore_patterns(root: Path) -> list[str]:
    """Patterns of the repository's top-level .dvcignore (gitignore syntax, simple subset)."""
    path = root / ".dvcignore"
    if not path.is_file():
        return []
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Whether a path relative to the repository matches a .dvcignore pattern (name, glob or dir/ rule)."""
    parts = rel.split("/")
    if parts[-1] in ALWAYS_IGNORED:
        return True
    for pat in patterns:
        pat = pat.rstrip("/")
        if "/" in pat.strip("/"):
            if fnmatch.fnmatch(rel, pat.lstrip("/")) or fnmatch.fnmatch(rel, pat.lstrip("/") + "/*"):
                return True
        elif any(fnmatch.fnmatch(p, pat) for p in parts):
            return True
    return False


def dir_listing(root: Path, out: Path, patterns: list[str]) -> list[dict[str, str]]:
    """DVC's listing of a directory output: ``{"md5", "relpath"}`` per file, sorted by path components."""
    entries = []
    for p in out.rglob("*"):
        if p.is_file() and not ignored(p.relative_to(root).as_posix(), patterns):
            entries.append({"md5": file_md5(p), "relpath": p.relative_to(out).as_posix()})
    return sorted(entries, key=lambda e: tuple(e["relpath"].split("/")))


def listing_md5(entries: list[dict[str, str]]) -> str:
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest() + DIR_SUFFIX


def cache_dirs(root: Path) -> list[Path]:
    """The DVC cache folder (``cache.dir`` of .dvc/config or config.local, default .dvc/cache)."""
    cfg = configparser.ConfigParser()
    cfg.read([root / ".dvc/config", root / ".dvc/config.local"])
    base = Path(cfg.get("cache", "dir", fallback=".dvc/cache").strip("'\""))
    base = base if base.is_absolute() else (root / ".dvc" / base if base.parts[0] != ".dvc" else root / base)
    return [base / "files" / "md5", base]


def cached_listing(root: Path, md5: str) -> list[dict[str, str]] | None:
    for base in cache_dirs(root):
        path = base / md5[:2] / md5[2:]
        if path.is_file():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def checked_stages(lock: dict[str, Any]) -> list[str]:
    """The stages CI checks in a parsed dvc.lock: :data:`DATA_STAGES`, every cell of :data:`MATRIX_DATA_GROUPS` in
    lock order, then those of :data:`TRAINED_STAGES` the lock has."""
    cells = [s for s in lock.get("stages", {}) if s.split("@", 1)[0] in MATRIX_DATA_GROUPS and "@" in s]
    return [*DATA_STAGES, *cells, *(s for s in TRAINED_STAGES if s in lock.get("stages", {}))]


def data_dir_outputs(lock: dict[str, Any], stages: Sequence[str] | None = None) -> dict[str, str]:
    """``{dir md5: path}`` of the directory outputs of ``stages`` (default :func:`checked_stages`) in a parsed
    dvc.lock."""
    outs = {}
    for stage in checked_stages(lock) if stages is None else stages:
        for out in (lock.get("stages", {}).get(stage) or {}).get("outs", []):
            if str(out.get("md5", "")).endswith(DIR_SUFFIX):
                outs[out["md5"]] = out["path"]
    return outs


def committed_listings(root: Path, rev: str) -> dict[str, list[dict[str, str]]]:
    """:data:`LISTINGS` at ``rev`` ({} where the revision has none)."""
    res = subprocess.run(["git", "show", f"{rev}:{LISTINGS}"], cwd=root, capture_output=True, text=True)
    return json.loads(res.stdout) if res.returncode == 0 else {}


def write_listings(root: Path, lock_path: Path) -> tuple[int, list[str]]:
    """Write :data:`LISTINGS` for the data stages' directory outputs of the working ``lock_path``, each from the
    DVC cache or, where the cache lacks it, from the workspace when that still hashes to the locked value.
    Returns how many were written and the paths no listing could be found for."""
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    patterns = dvcignore_patterns(root)
    listings, missing = {}, []
    for md5, rel in sorted(data_dir_outputs(lock).items(), key=lambda kv: kv[1]):
        entries = cached_listing(root, md5)
        if entries is None and (root / rel).is_dir():
            here = dir_listing(root, root / rel, patterns)
            entries = here if listing_md5(here) == md5 else None
        if entries is None:
            missing.append(rel)
        else:
            listings[md5] = [{"md5": e["md5"], "relpath": e["relpath"]} for e in entries]
    text = json.dumps(listings, indent=0, sort_keys=True) + "\n"
    (root / LISTINGS).write_text(text, encoding="utf-8")
    return len(listings), missing


def first_difference(expected: list[dict[str, str]], actual: list[dict[str, str]]) -> str:
    exp = {e["relpath"]: e["md5"] for e in expected}
    act = {e["relpath"]: e["md5"] for e in actual}
    for rel in sorted(exp.keys() | act.keys(), key=lambda r: tuple(r.split("/"))):
        if exp.get(rel) != act.get(rel):
            if rel not in act:
                return f"first differing file: {rel} (missing from the workspace)"
            if rel not in exp:
                return f"first differing file: {rel} (not in the committed output)"
            return f"first differing file: {rel} (md5 {act[rel]}, committed {exp[rel]})"
    return "same files and hashes, yet the listing hash differs (DVC version or ignore rules?)"


def committed_lock(root: Path, rev: str, lock: str) -> dict[str, Any]:
    res = subprocess.run(["git", "show", f"{rev}:{lock}"], cwd=root, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"error: cannot read {lock} at {rev}: {res.stderr.strip()}")
    return yaml.safe_load(res.stdout)


def resolve(text: str, params: dict[str, Any]) -> str:
    """``${a.b}`` interpolation of dvc.yaml against params.yaml (what dvc.lock records, resolved)."""
    def value(m: re.Match[str]) -> str:
        node: Any = params
        for key in m.group(1).split("."):
            node = node[key]
        return str(node)

    return re.sub(r"\$\{([^}]+)\}", value, text)


def uncached_outputs(root: Path) -> set[str]:
    """Outputs declared with ``cache: false`` in dvc.yaml (metrics: timings and summaries, git-tracked)."""
    dvc_yaml = yaml.safe_load((root / "dvc.yaml").read_text(encoding="utf-8"))
    params_path = root / "params.yaml"
    params = yaml.safe_load(params_path.read_text(encoding="utf-8")) if params_path.is_file() else {}
    out = set()
    for stage in dvc_yaml.get("stages", {}).values():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind, []) or []:
                if isinstance(entry, dict):
                    for path, opts in entry.items():
                        if isinstance(opts, dict) and opts.get("cache") is False:
                            out.add(resolve(path, params))
    return out


def check(root: Path, lock: dict[str, Any], stages: list[str], include_metrics: bool,
          listings: dict[str, list[dict[str, str]]] | None = None) -> list[Mismatch]:
    patterns = dvcignore_patterns(root)
    listings = listings or {}
    skip = set() if include_metrics else uncached_outputs(root)
    problems = []
    for stage in stages:
        entry = lock.get("stages", {}).get(stage)
        if entry is None:
            problems.append(Mismatch(stage, "-", None, None, "stage missing from the committed dvc.lock"))
            continue
        for out in entry.get("outs", []):
            rel, expected = out["path"], out.get("md5")
            if rel in skip:
                continue
            path = root / rel
            if not path.exists():
                problems.append(Mismatch(stage, rel, expected, None, "missing from the workspace"))
                continue
            if expected and expected.endswith(DIR_SUFFIX):
                listing = dir_listing(root, path, patterns) if path.is_dir() else []
                actual = listing_md5(listing)
                if actual != expected:
                    committed = cached_listing(root, expected) or listings.get(expected)
                    detail = (first_difference(committed, listing) if committed is not None else
                              f"no {expected} listing in the DVC cache or {LISTINGS} to name the file (dvc "
                              "pull it, or build the committed revision once)")
                    problems.append(Mismatch(stage, rel, expected, actual, detail))
            else:
                actual = file_md5(path) if path.is_file() else None
                if actual != expected:
                    problems.append(Mismatch(stage, rel, expected, actual, "file differs"))
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1], help="repository root")
    ap.add_argument("--rev", default="HEAD", help="git revision whose dvc.lock is expected (default HEAD)")
    ap.add_argument("--lock", default="dvc.lock", help="lock file path inside the repository")
    ap.add_argument("--stages", default=None,
                    help="comma-separated stages to check (default: the data stages, every cmp_select cell and "
                         "TRAINED_STAGES)")
    ap.add_argument("--include-metrics", action="store_true", help="also compare cache: false outputs")
    ap.add_argument("--write-listings", action="store_true",
                    help=f"instead of checking, write {LISTINGS} from the working dvc.lock (after a dvc repro that "
                         "changed a data stage; commit it with the lock)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    if args.write_listings:
        written, missing = write_listings(root, root / args.lock)
        print(f"wrote {written} directory listings to {LISTINGS}")
        if missing:
            print(f"error: no listing in the cache or workspace for {', '.join(missing)}: run dvc repro first",
                  file=sys.stderr)
            return 1
        return 0
    try:
        lock = committed_lock(root, args.rev, args.lock)
        stages = checked_stages(lock) if args.stages is None else [s for s in args.stages.split(",") if s]
        problems = check(root, lock, stages, args.include_metrics, committed_listings(root, args.rev))
    except (OSError, yaml.YAMLError, KeyError, json.JSONDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not problems:
        cells = len(stages) - len(DATA_STAGES) - len([s for s in TRAINED_STAGES if s in stages])
        named = args.stages or f"{','.join(DATA_STAGES)}, {cells} cmp_select cells and {', '.join(TRAINED_STAGES)}"
        print(f"ok: every output of {named} matches {args.lock} at {args.rev}")
        return 0
    for p in problems:
        print(f"MISMATCH {p.stage}: {p.path}: {p.detail}\n    committed {p.expected}\n    workspace {p.actual}",
              file=sys.stderr)
    print(f"error: {len(problems)} output(s) differ from {args.lock} at {args.rev}: these stages did not "
          "reproduce on this machine (see benchmarks/perturb_machine.py to find the cause)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
