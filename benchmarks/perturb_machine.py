"""Run the data stages under "another machine" perturbations and report which output files change.

Each variant runs the data stages that ``benchmarks/check_lock.py`` checks (prepare -> manifest -> probe ->
score -> select and sources -> source_score -> source_select -> source_simulate), each with its command from
``dvc.yaml``, on a small mini profile in its own scratch folder (outputs are relative to the working
directory, so nothing under the repository's ``data/`` is touched) and a perturbed environment: BLAS kernel
family, numpy SIMD dispatch, torch ATen/oneDNN ISA, faiss SIMD level, thread counts, dataset worker count.
A variable a variant sets wins over the stages' own pins (``curator.determinism.configure_environment``
leaves a variable that is already set alone), so a variant shows what that library's choice does to the bytes.
Every variant is then compared file by file with the first one::

    python benchmarks/perturb_machine.py --work /tmp/perturb                  # every variant
    python benchmarks/perturb_machine.py --work /tmp/perturb --variants base,faiss_none
    python benchmarks/perturb_machine.py --work /tmp/perturb --stages prepare   # audio only (fastest)
    python benchmarks/perturb_machine.py --work /tmp/m --profile repo --variants base,faiss_none \\
        --from source_select                   # the pipeline's own mini; faiss variant reruns only its stages

Prints a JSON report on stdout: per variant and stage, the differing files (first ``--show`` of them) and,
for the first differing file, the largest absolute difference per differing column (Parquet) or the number
of differing lines and the first of them (CSV, JSONL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path

import yaml

from check_lock import DATA_STAGES, resolve

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

PROFILE = {  # a mini dataset that builds in well under a minute on 2 cores, every rate and distortion drawn
    "dataset": {"num_workers": 2, "mini": {
        "n_train": 24, "n_dev": 4, "n_test": 4, "speakers": {"train": 2, "dev": 1, "test": 1},
        "n_rirs": {"train": 2, "dev": 1, "test": 1}, "noises_per_type": 1, "noise_duration_sec": 2.0,
        "duration_sec": [1.0, 1.5], "imperfect_fraction": 0.5}},
    "probe": {"steps": 10, "batch_size": 4, "crop_sec": 0.5},
    "select": {"K_hours": 0.004},  # about half of the tiny pool's hours, so the selections have a choice to make
    "source_select": {"K_hours": 0.004},
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
    "faiss_none": ({"FAISS_SIMD_LEVEL": "NONE"}, {}),
    "faiss_avx512": ({"FAISS_SIMD_LEVEL": "AVX512"}, {}),
    # the library's own choice on an AVX-512 CPU, one library at a time ("native" below: all of them at once)
    "numpy_avx512": ({"NPY_DISABLE_CPU_FEATURES": ""}, {}),
    "aten_avx512": ({"ATEN_CPU_CAPABILITY": "avx512"}, {}),
    "onednn_all": ({"ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "ALL"}, {}),
    "mkl_auto": ({"MKL_CBWR": "AUTO", "MKL_ENABLE_INSTRUCTIONS": "AVX512"}, {}),
    "native": ({}, {}),  # environment filled in at run time by native_environment()
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

NATIVE_PROBE = """
import json, faiss, torch
print(json.dumps({"aten": torch.backends.cpu.get_cpu_capability(), "faiss": faiss.SIMDConfig.get_level_name()}))
"""
"""Asks torch and faiss, loaded with none of the pins, which kernels they picked on this CPU."""

STAGES = DATA_STAGES
SCRUB = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
         "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
         "FAISS_SIMD_LEVEL", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Variables removed from the inherited environment so that every variant starts from the same one."""


def deep_update(base: dict, extra: dict) -> dict:
    for k, v in extra.items():
        base[k] = deep_update(dict(base.get(k, {})), v) if isinstance(v, dict) else v
    return base


@lru_cache(maxsize=1)
def native_environment() -> dict[str, str]:
    """What this machine runs with no pins, written as the variables that select it: the ``native`` variant.

    Its difference from the reference (the stages' own AVX2 pins) is what ``curator.determinism`` takes away
    on this CPU; on an AVX2-only CPU the two coincide but for numpy's and MKL's caps, which then select nothing.
    OpenBLAS is the exception: its native choice is "variable unset", which the stages turn into their Haswell
    pin, and each copy picks its own core when unset (on an AMD EPYC with AVX-512: numpy's SkylakeX, faiss's
    older bundled one Barcelona), so no one value is native; the ``openblas_*`` variants cover it.
    """
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    res = subprocess.run([PY, "-c", NATIVE_PROBE], env=env, capture_output=True, text=True, check=True)
    found = json.loads(res.stdout.strip().splitlines()[-1])
    return {"NPY_DISABLE_CPU_FEATURES": "", "ATEN_CPU_CAPABILITY": found["aten"].lower(),
            "ONEDNN_MAX_CPU_ISA": "ALL", "DNNL_MAX_CPU_ISA": "ALL", "MKL_CBWR": "AUTO",
            "MKL_ENABLE_INSTRUCTIONS": "AVX512", "FAISS_SIMD_LEVEL": found["faiss"]}


def variant_environment(name: str) -> dict[str, str]:
    return native_environment() if name == "native" else VARIANTS[name][0]


@lru_cache(maxsize=1)
def dvc_stages() -> dict[str, dict]:
    """The repository's ``dvc.yaml`` stages, read once."""
    return yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]


def stage_commands(params: dict) -> dict[str, list[str]]:
    """Each data stage's ``dvc.yaml`` command, interpolated against ``params``, run with this interpreter."""
    cmds = {}
    for stage in STAGES:
        argv = shlex.split(resolve(dvc_stages()[stage]["cmd"], params))
        cmds[stage] = [PY, *argv[1:]] if argv[0] == "python" else argv
    return cmds


def declared_outputs(params: dict, stage: str) -> list[str]:
    """A stage's cached outputs (files or folders) as ``dvc.yaml`` declares them; timings (``cache: false``) left out."""
    outs = []
    for entry in dvc_stages()[stage].get("outs", []):
        if isinstance(entry, dict):
            (path, opts), = entry.items()
            if isinstance(opts, dict) and opts.get("cache") is False:
                continue
        else:
            path = entry
        outs.append(resolve(path, params))
    return outs


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def outputs(run: Path, stage: str) -> dict[str, str]:
    """{relative path: md5} of every file a stage wrote in a run folder."""
    params = yaml.safe_load((run / "params.yaml").read_text(encoding="utf-8"))
    found = {}
    for rel in declared_outputs(params, stage):
        path = run / rel
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] * path.is_file()
        found.update({p.relative_to(run).as_posix(): md5(p) for p in files})
    return found


def run_variant(work: Path, name: str, stages: list[str], src: Path, profile: dict,
                inputs: Path | None = None) -> dict[str, float]:
    """Run ``stages`` of one variant in ``work/name``; with ``inputs``, start from a copy of that run folder
    (the earlier stages' outputs) less the outputs of ``stages``."""
    env_extra, overrides = variant_environment(name), VARIANTS[name][1]
    run = work / name
    shutil.rmtree(run, ignore_errors=True)
    params = yaml.safe_load((src.parent / "params.yaml").read_text())
    deep_update(params, profile)
    deep_update(params, overrides)
    if inputs is None:
        run.mkdir(parents=True)
    else:
        shutil.copytree(inputs, run, symlinks=True)
        for stage in stages:
            for rel in declared_outputs(params, stage):
                target = run / rel
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
    (run / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in SCRUB}
    env.update(env_extra, PYTHONPATH=str(src), PYTHONHASHSEED="0")
    times = {}
    cmds = stage_commands(params)
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


def text_diff(a: Path, b: Path) -> dict[str, object]:
    """How many lines of two text outputs differ, and the first differing line number (1-based)."""
    la, lb = a.read_text(encoding="utf-8").splitlines(), b.read_text(encoding="utf-8").splitlines()
    differing = [i for i in range(max(len(la), len(lb))) if i >= len(la) or i >= len(lb) or la[i] != lb[i]]
    return {"lines": max(len(la), len(lb)), "differing": len(differing),
            "first": differing[0] + 1 if differing else None}


def compare(work: Path, ref: str, name: str, stages: list[str], show: int) -> dict[str, object]:
    report: dict[str, object] = {}
    for stage in stages:
        a, b = outputs(work / ref, stage), outputs(work / name, stage)
        diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
        entry: dict[str, object] = {"files": len(a), "differing": len(diff), "first": diff[:show]}
        both = [k for k in diff if k in a and k in b]
        if both and both[0].endswith(".parquet"):
            entry["max_abs_diff"] = parquet_diff(work / ref / both[0], work / name / both[0])
        elif both and both[0].endswith((".csv", ".jsonl", ".json")):
            entry["lines"] = text_diff(work / ref / both[0], work / name / both[0])
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
    ap.add_argument("--profile", choices=("tiny", "repo"), default="tiny",
                    help="tiny: a mini dataset of 24 training pairs (minutes); repo: params.yaml as it is (the "
                         "pipeline's own mini, about 10 minutes a variant on 2 cores)")
    ap.add_argument("--from", dest="start", choices=STAGES,
                    help="variants after the first rerun only this stage and the later ones of --stages, on a copy "
                         "of the first variant's earlier outputs (e.g. --from source_select: a faiss variant in "
                         "seconds once the reference has run)")
    args = ap.parse_args()
    names, stages = args.variants.split(","), args.stages.split(",")
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        ap.error(f"unknown stage(s) {unknown}; the data stages are {', '.join(STAGES)}")
    stages = [s for s in STAGES if s in stages]  # dvc.yaml order, whatever order they were given in
    if args.start is not None and args.start not in stages:
        ap.error(f"--from {args.start} is not one of --stages")
    later = stages[stages.index(args.start):] if args.start else stages
    profile = PROFILE if args.profile == "tiny" else {}
    report: dict[str, object] = {}
    for name in names:
        first = name == names[0]
        run_stages = stages if first else later
        inputs = None if first or args.start is None else args.work / names[0]
        try:
            times = {} if args.reuse else run_variant(args.work, name, run_stages, args.src.resolve(), profile,
                                                      inputs)
        except RuntimeError as exc:  # a variable this CPU cannot honour (e.g. AVX-512 kernels without AVX-512)
            if first:
                raise
            report[name] = {"failed": str(exc)[-600:]}
        else:
            report[name] = {"seconds": times} if first else \
                {"seconds": times, **compare(args.work, names[0], name, run_stages, args.show)}
            if name == "native":
                report[name]["environment"] = native_environment()
        print(json.dumps({name: report[name]}), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
