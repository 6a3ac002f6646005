"""DVC's own cost per command on this repository: what ``dvc status`` and ``dvc repro`` pay before and after any
stage runs, and the YAML work behind it (prints JSON).

DVC reads ``dvc.yaml`` and ``dvc.lock`` several times a command (a safe load, which libyaml's C parser does when
``ruamel.yaml.clib`` is installed) and, after each stage it runs, loads the lock round-trip and dumps it again
(pure Python whatever is installed). The lock grows with the efficacy matrix (every cell records its deps and
params), so these costs grow with the cell count, once per stage::

    python benchmarks/bench_dvc.py                       # the committed dvc.lock, 3 repeats
    python benchmarks/bench_dvc.py --stage cmp_select@random-0.25 --repeat 5

``yaml``: seconds per safe load (C parser when available, and the pure-Python one), round-trip load and dump of
the lock, as DVC's own helpers do them. ``dvc``: wall seconds of ``dvc status <stage>`` and of a ``dvc repro
<stage>`` that finds it up to date, on this repository (run ``make repro`` first: a stage that is not up to date
is never run, its ``noop_repro_s`` is left out and ``stage_up_to_date`` says so). Medians over ``--repeat``.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 3)


def yaml_costs(text: str, repeat: int) -> dict[str, object]:
    from dvc.utils.serialize._yaml import _dump, parse_yaml
    from ruamel.yaml import YAML

    c_loader = YAML(typ="safe").Parser.__name__ == "CParser"  # ruamel picks libyaml when ruamel.yaml.clib imports
    pure = YAML(typ="safe", pure=True)
    data = parse_yaml(text, "dvc.lock", typ="rt")
    return {
        "c_loader": c_loader,
        "safe_load_s": _median_seconds(lambda: parse_yaml(text, "dvc.lock", typ="safe"), repeat),
        "safe_load_pure_python_s": _median_seconds(lambda: pure.load(text), repeat),
        "round_trip_load_s": _median_seconds(lambda: parse_yaml(text, "dvc.lock", typ="rt"), repeat),
        "dump_s": _median_seconds(lambda: _dump(data, io.StringIO()), repeat),
    }


def dvc_costs(stage: str, repeat: int) -> dict[str, object]:
    dvc = [sys.executable, "-m", "dvc"]

    def run(*args: str) -> str:
        proc = subprocess.run([*dvc, *args], cwd=REPO, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"error: dvc {' '.join(args)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        return proc.stdout + proc.stderr

    up_to_date = "up to date" in run("status", stage).lower()
    out = {"stage": stage, "stage_up_to_date": up_to_date,
           "status_s": _median_seconds(lambda: run("status", stage), repeat)}
    if up_to_date:  # a repro that runs nothing: DVC's own cost alone
        out["noop_repro_s"] = _median_seconds(lambda: run("repro", "--single-item", stage), repeat)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lock", default=str(REPO / "dvc.lock"),
                    help="lock file whose YAML steps are timed (default: %(default)s); the dvc commands run on "
                         "this repository")
    ap.add_argument("--stage", default="cmp_select@random-0.25",
                    help="stage for dvc status / the no-op repro (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="repeats per figure, median reported (default: 3)")
    ap.add_argument("--no-dvc", action="store_true", help="time the YAML work only, no dvc command")
    args = ap.parse_args(argv)
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    lock = Path(args.lock)
    if not lock.is_file():
        print(f"error: no lock file at '{lock}'", file=sys.stderr)
        return 2
    text = lock.read_text(encoding="utf-8")
    result: dict[str, object] = {
        "lock": {"path": str(lock), "bytes": len(text.encode()), "lines": text.count("\n"),
                 "stages": len((yaml.safe_load(text) or {}).get("stages", {}))},
        "yaml": yaml_costs(text, args.repeat),
    }
    if not args.no_dvc:
        result["dvc"] = dvc_costs(args.stage, args.repeat)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
