"""Run the data stages under "another machine" perturbations and report which output files change.

Each variant runs prepare -> manifest -> probe -> score of a small mini profile in its own scratch folder
(outputs are relative to the working directory, so nothing under the repository's ``data/`` is touched)
with a perturbed environment: BLAS kernel family, numpy SIMD dispatch, torch ATen/oneDNN ISA, thread
counts, dataset worker count. Every variant is then compared file by file with the first one::

    python benchmarks/perturb_machine.py --work /tmp/perturb                  # every variant
    python benchmarks/perturb_machine.py --work /tmp/perturb --variants base,openblas_sandybridge
    python benchmarks/perturb_machine.py --work /tmp/perturb --stages prepare   # audio only (fastest)

Prints a JSON report on stdout: per variant and stage, the differing files (first ``--show`` of them) and,
for Parquet outputs, the largest absolute difference per differing column.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

PROFILE = {  # a mini dataset that builds in well under a minute on 2 cores, every rate and distortion drawn
    "dataset": {"num_workers": 2, "mini": {
        "n_train": 24, "n_dev": 4, "n_test": 4, "speakers": {"train": 2, "dev": 1, "test": 1},
        "n_rirs": {"train": 2, "dev": 1, "test": 1}, "noises_per_type": 1, "noise_duration_sec": 2.0,
        "duration_sec": [1.0, 1.5], "imperfect_fraction": 0.5}},
    "probe": {"steps": 10, "batch_size": 4, "crop_sec": 0.5},
}

NO_AVX512_NUMPY = "X86_V4 AVX512_ICL"
"""numpy 2.4 dispatch-target names for the AVX-512 code paths (older names such as AVX512F are ignored)."""

VARIANTS: dict[str, tuple[dict[str, str], dict[str, object]]] = {
    # name: (environment, dataset overrides)
    "base": ({}, {}),
    "openblas_haswell": ({"OPENBLAS_CORETYPE": "Haswell"}, {}),
    "openblas_skylakex": ({"OPENBLAS_CORETYPE": "SkylakeX"}, {}),
    "openblas_zen": ({"OPENBLAS_CORETYPE": "Zen"}, {}),
    "openblas_sandybridge": ({"OPENBLAS_CORETYPE": "Sandybridge"}, {}),
    "openblas_l2": ({"OPENBLAS_L2_SIZE": "262144"}, {}),
    "numpy_no_avx512": ({"NPY_DISABLE_CPU_FEATURES": NO_AVX512_NUMPY}, {}),
    "numpy_no_avx2": ({"NPY_DISABLE_CPU_FEATURES": f"X86_V3 {NO_AVX512_NUMPY}"}, {}),
    "aten_avx2": ({"ATEN_CPU_CAPABILITY": "avx2"}, {}),
    "aten_default": ({"ATEN_CPU_CAPABILITY": "default"}, {}),
    "onednn_avx2_mkl_cbwr": ({"ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}, {}),
    "threads_1": ({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, {}),
    "threads_2": ({"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}, {}),
    "workers_1": ({}, {"dataset": {"num_workers": 1}}),
    "everything": ({"OPENBLAS_CORETYPE": "Sandybridge", "OPENBLAS_L2_SIZE": "262144",
                    "NPY_DISABLE_CPU_FEATURES": NO_AVX512_NUMPY, "ATEN_CPU_CAPABILITY": "avx2",
                    "ONEDNN_MAX_CPU_ISA": "AVX2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2",
                    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
                   {"dataset": {"num_workers": 1}}),
}
"""Perturbations this machine can apply to itself. ONNX Runtime picks kernels by CPUID with no override;
emulate another ISA with ``qemu-x86_64 -cpu Haswell`` instead (see tests/determinism)."""

STAGES = ("prepare", "manifest", "probe", "score")
SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
         "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS",
         "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Variables removed from the inherited environment so that every variant starts from the same one."""


def deep_update(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        base[k] = deep_update(dict(base.get(k, {})), v) if isinstance(v, dict) else v
    return base


def stage_commands(params: str) -> dict[str, list[str]]:
    manifest = "data.manifest=data/manifests/mini/train.jsonl"
    return {
        "prepare": [PY, "-m", "curator.datasets", "--dataset_cfg", params, "--data_cfg", params, "--stage",
                    "prepare", "--split", "all"],
        "manifest": [PY, "-m", "curator.datasets", "--dataset_cfg", params, "--data_cfg", params, "--stage",
                     "manifest", "--split", "all"],
        "probe": [PY, "-m", "curator.scoring.probe", "--config", params, manifest, "--out",
                  "data/scores/probe_loss.parquet", "--metrics", "metrics/probe.json"],
        "score": [PY, "-m", "curator.scoring", "--config", params, manifest, "--out",
                  "data/scores/train_scores.parquet"],
    }


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def outputs(run: Path, stage: str) -> dict[str, str]:
    """{relative path: md5} of a stage's outputs in a run folder."""
    if stage == "prepare":
        root = run / "data/external/mini"
        return {p.relative_to(run).as_posix(): md5(p) for p in sorted(root.rglob("*")) if p.is_file()}
    paths = {"manifest": sorted((run / "data/manifests/mini").glob("*.jsonl")),
             "probe": [run / "data/scores/probe_loss.parquet"],
             "score": [run / "data/scores/train_scores.parquet"]}[stage]
    return {p.relative_to(run).as_posix(): md5(p) for p in paths if p.is_file()}


def run_variant(work: Path, name: str, stages: list[str], src: Path) -> dict[str, float]:
    env_extra, overrides = VARIANTS[name]
    run = work / name
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    params = yaml.safe_load((src.parent / "params.yaml").read_text())
    deep_update(params, PROFILE)
    deep_update(params, overrides)
    (run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(env_extra, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    times = {}
    cmds = stage_commands("params.yaml")
    for stage in stages:
        t0 = time.perf_counter()
        res = subprocess.run(cmds[stage], cwd=run, env=env, capture_output=True, text=True)
        times[stage] = round(time.perf_counter() - t0, 1)
        (run / f"{stage}.log").write_text(res.stdout + res.stderr)
        if res.returncode != 0:
            raise RuntimeError(f"{name}/{stage} failed ({res.returncode}):\n{res.stderr[-3000:]}")
    return times


def parquet_diff(a: Path, b: Path) -> dict[str, float]:
    """Largest absolute difference of every differing column (inf where NaN-ness or non-floats differ)."""
    import numpy as np
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    out = {}
    for col in ta.column_names:
        x, y = ta[col].to_pylist(), tb[col].to_pylist()
        if x == y:
            continue
        try:
            xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
            out[col] = float(np.nanmax(np.abs(xa - ya))) if np.array_equal(np.isnan(xa), np.isnan(ya)) else np.inf
        except (TypeError, ValueError):
            out[col] = float("inf")
    if ta.schema.metadata != tb.schema.metadata:
        out["<metadata>"] = float("inf")
    return out


def compare(work: Path, ref: str, name: str, stages: list[str], show: int) -> dict[str, object]:
    report: dict[str, object] = {}
    for stage in stages:
        a, b = outputs(work / ref, stage), outputs(work / name, stage)
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        entry: dict[str, object] = {"files": len(a), "differing": len(diff), "first": diff[:show]}
        if stage in ("probe", "score") and diff:
            entry["max_abs_diff"] = parquet_diff(work / ref / diff[0], work / name / diff[0])
        report[stage] = entry
    return report


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/perturb"))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; the first is the reference")
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--show", type=int, default=5, help="differing files listed per stage")
    ap.add_argument("--src", type=Path, default=REPO / "src",
                    help="source tree to run, its params.yaml beside it (e.g. a `git archive` snapshot)")
    ap.add_argument("--reuse", action="store_true", help="compare existing run folders without rerunning")
    args = ap.parse_args()
    names, stages = args.variants.split(","), args.stages.split(",")
    report: dict[str, object] = {}
    for name in names:
        times = {} if args.reuse else run_variant(args.work, name, stages, args.src.resolve())
        report[name] = {"seconds": times} if name == names[0] else \
            {"seconds": times, **compare(args.work, names[0], name, stages, args.show)}
        print(json.dumps({name: report[name]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
