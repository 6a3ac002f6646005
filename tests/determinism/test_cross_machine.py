"""Cross-machine determinism: the data stages give the same bytes under another machine's numeric settings.

Two tiny builds run in subprocesses, one with the defaults and 2 threads/workers, the other with 1 thread,
1 worker and every kernel-selection variable that is safe on any x86_64 CPU pointed elsewhere (numpy
without its AVX-512 dispatch, torch's ATen at its baseline build, oneDNN at SSE4.1, MKL in compatible
mode, OpenBLAS on Haswell kernels where the CPU has AVX2). prepare, manifest, probe, score and select must
produce identical files (the selection also on 1 thread against 2); a failure names the first file that
differs. ONNX Runtime chooses kernels by CPUID with no override, and torch's float32 square root follows the CPU
too, so those parts are checked under an emulated AVX2 CPU instead (``test_emulated_cpu``).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from curator.determinism import NUMPY_NO_AVX512, REQUIRED_FLAGS, cpu_flags

REPO = Path(__file__).resolve().parents[2]
PARAMS = REPO / "tests" / "params.yaml" if (REPO / "tests" / "params.yaml").is_file() else REPO / "params.yaml"
MANIFEST = "data/manifests/mini/train.jsonl"
TINY = ["dataset.mini.n_train=12", "dataset.mini.n_dev=3", "dataset.mini.n_test=3",
        "dataset.mini.speakers.train=2", "dataset.mini.speakers.dev=1", "dataset.mini.speakers.test=1",
        "dataset.mini.n_rirs.train=2", "dataset.mini.n_rirs.dev=1", "dataset.mini.n_rirs.test=1",
        "dataset.mini.noises_per_type=1", "dataset.mini.noise_duration_sec=2.0",
        "dataset.mini.duration_sec=[1.0,1.5]", "dataset.mini.speech_free_fraction=0.25",
        "dataset.mini.imperfect_fraction=0.5"]
"""Every kind of source (speech of several rates, each defect, noises, RIRs, speech-free) in seconds."""
PROBE = ["probe.steps=10", "probe.batch_size=4", "probe.crop_sec=0.5"]
SELECT = ["select.K_hours=0.005"]
"""About half of the tiny pool's 0.0104 h (12 rows, 8 past the quality gate): ranking and coverage rounds decide."""
SCRUBBED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES",
            "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
            "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "FAISS_SIMD_LEVEL")


def _threads(n: int) -> dict[str, str]:
    return {"OMP_NUM_THREADS": str(n), "OPENBLAS_NUM_THREADS": str(n), "MKL_NUM_THREADS": str(n)}


def other_machine() -> dict[str, str]:
    """Kernel-selection variables that are safe on every x86_64 CPU (and ignored elsewhere)."""
    env = {"NPY_DISABLE_CPU_FEATURES": NUMPY_NO_AVX512, "ATEN_CPU_CAPABILITY": "default",
           "ONEDNN_MAX_CPU_ISA": "SSE41", "DNNL_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE",
           "OPENBLAS_L2_SIZE": "262144", **_threads(1)}
    if REQUIRED_FLAGS <= cpu_flags():
        env["OPENBLAS_CORETYPE"] = "Haswell"  # Haswell kernels crash on CPUs without AVX2
    return env


def _run(cwd: Path, env_extra: dict[str, str], workers: int) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(env_extra, PYTHONPATH=str(REPO / "src"), PYTHONHASHSEED="0")
    common = ["--dataset_cfg", str(PARAMS), "--data_cfg", str(PARAMS)]
    overrides = [*TINY, f"dataset.num_workers={workers}"]
    commands = [
        [sys.executable, "-m", "curator.datasets", *common, "--stage", "prepare", "--split", "all", *overrides],
        [sys.executable, "-m", "curator.datasets", *common, "--stage", "manifest", "--split", "all", *overrides],
        [sys.executable, "-m", "curator.scoring.probe", "--config", str(PARAMS), f"data.manifest={MANIFEST}",
         "--out", "data/scores/probe_loss.parquet", "--metrics", "metrics/probe.json", *PROBE],
        [sys.executable, "-m", "curator.scoring", "--config", str(PARAMS), f"data.manifest={MANIFEST}",
         "--out", "data/scores/train_scores.parquet", "score.num_workers=" + str(workers),
         "score.options.dnsmos.max_windows=1"],
        [sys.executable, "-m", "curator.selection", "--config", str(PARAMS), "--quotas", str(PARAMS),
         "--scores", "data/scores/train_scores.parquet", "--truth", "data/external/mini/reference_truth.csv",
         "--out", "data/curated/pairs/curated_train.csv", "--metrics", "metrics/select.json",
         "--plots-dir", "metrics/plots/select", *SELECT, f"select.threads={workers}"],
    ]
    for cmd in commands:
        res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{' '.join(cmd[2:4])} failed:\n{res.stderr[-3000:]}"


def _hashes(root: Path) -> dict[str, str]:
    """md5 of every data file (the metrics JSONs hold timings and are not hashed by DVC as data)."""
    return {p.relative_to(root).as_posix(): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted((root / "data").rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_data_stages_identical_under_other_threads_workers_and_kernels(tmp_path: Path) -> None:
    a, b = tmp_path / "this_machine", tmp_path / "other_machine"
    a.mkdir()
    b.mkdir()
    _run(a, _threads(2), workers=2)
    _run(b, other_machine(), workers=1)
    ha, hb = _hashes(a), _hashes(b)
    assert len(ha) > 50, "the tiny build wrote too few files to be a meaningful check"
    differing = sorted(k for k in ha.keys() | hb.keys() if ha.get(k) != hb.get(k))
    assert not differing, (f"{len(differing)} of {len(ha)} files differ under {other_machine()}; "
                           f"first: {differing[0]} (run benchmarks/perturb_machine.py to find the variable)")
    ext = Path("data/external/mini/checksums.sha256")
    assert (a / ext).read_bytes() == (b / ext).read_bytes()


@pytest.mark.skipif(not REQUIRED_FLAGS <= cpu_flags(), reason="the AVX2 pins apply to x86_64 CPUs with AVX2 and FMA")
def test_faiss_runs_its_avx2_kernels_once_the_environment_is_pinned() -> None:
    """faiss's dynamic-dispatch build picks NONE, AVX2 or AVX-512 distance kernels at load time, and the level
    changes the order in which the selections pick rows on the mini data, so their bytes (a committed ``source_select`` output
    did not reproduce on another CPU). The selection entry points call
    ``configure_environment`` before faiss loads; faiss must then report AVX2, whatever the CPU offers."""
    code = ("from curator.determinism import configure_environment; configure_environment(threads=None); "
            "import faiss; print(faiss.SIMDConfig.get_level_name())")
    env = {k: v for k, v in os.environ.items() if k not in (*SCRUBBED, "FAISS_SIMD_LEVEL")}
    env["PYTHONPATH"] = str(REPO / "src")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "AVX2"
    unpinned = subprocess.run([sys.executable, "-c", code.replace("configure_environment(threads=None); ", "")],
                              env={**env, "FAISS_SIMD_LEVEL": "NONE"}, capture_output=True, text=True, timeout=120)
    assert unpinned.stdout.strip() == "NONE"  # the variable is what faiss reads (a user's own choice still wins)


PROBE_SITECUSTOMIZE = '''
import atexit, json, os, sys
WATCHED = ("numpy", "scipy", "faiss", "torch", "onnxruntime", "pandas")
VARIABLES = %r
seen = {}
class _Probe:
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        sub = top == "curator" and name.count(".") == 1 and name != "curator.determinism"  # that one pins
        if (top in WATCHED or sub) and name not in seen:
            seen[name] = {k: os.environ.get(k) for k in VARIABLES}
        return None
def _write():
    with open(os.environ["PIN_PROBE_OUT"], "w") as f:
        json.dump(seen, f)
atexit.register(_write)
sys.meta_path.insert(0, _Probe())
'''
"""Records the pin variables at the moment each numeric library, and each ``curator.<subpackage>``, is first
imported (a ``sitecustomize`` on ``PYTHONPATH`` runs before the command's first import); writes them when the
command exits (once: a write at each of torch's thousands of imports made the check take minutes)."""


def _imports_seen(tmp_path: Path, argv: list[str]) -> dict[str, dict[str, str | None]]:
    import json

    from curator.determinism import environment_pins

    site = tmp_path / f"site_{len(list(tmp_path.iterdir()))}"
    site.mkdir()
    variables = sorted({*environment_pins(), *SCRUBBED})
    (site / "sitecustomize.py").write_text(PROBE_SITECUSTOMIZE % (variables,))
    out = site / "seen.json"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{REPO / 'src'}", PIN_PROBE_OUT=str(out))
    res = subprocess.run([sys.executable, *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, f"{argv}: {res.stderr[-2000:]}"
    return json.loads(out.read_text()) if out.is_file() else {}


def test_every_stage_entry_point_is_pinned_before_its_packages_load(tmp_path: Path) -> None:
    """``python -m curator.selection.sources`` imports ``curator.selection`` (numpy, scipy, faiss) before its
    ``__main__`` runs, so a pin placed there came too late: faiss ran its AVX-512 kernels on an AVX-512 CPU and
    the committed ``source_select`` list did not reproduce there. Every stage command of ``dvc.yaml``
    (``--help`` loads the same packages) must have every pin in place when its first subpackage and each numeric
    library are imported; ``python -c 'import curator.selection'`` (no stage) must not be pinned."""
    import shlex

    import yaml

    from curator.determinism import ENTRY_POINTS, THREAD_VARIABLES, environment_pins, pinned_entry

    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    commands = {}
    for stage in stages.values():
        argv = shlex.split(stage["cmd"])
        key = pinned_entry(argv)
        if key is not None:
            commands[key] = argv[1:3] + (["select"] if key.endswith(" select") else [])
    assert set(commands) == set(ENTRY_POINTS)
    loaded_numeric = set()
    for key, argv in sorted(commands.items()):
        seen = _imports_seen(tmp_path, [*argv, "--help"])
        threads = ENTRY_POINTS[key]
        wanted = {**environment_pins(), **dict.fromkeys(THREAD_VARIABLES, None if threads is None else str(threads))}
        assert any(name.startswith("curator.") for name in seen), (key, sorted(seen))
        for name, env in seen.items():
            wrong = {k: env.get(k) for k, v in wanted.items() if env.get(k) != v}
            assert not wrong, f"{key}: {name} was imported before the pins: {wrong}"
        loaded_numeric |= {name for name in seen if not name.startswith("curator.")}
    assert {"numpy", "faiss"} <= loaded_numeric  # the selections' packages load them at import
    unpinned = _imports_seen(tmp_path, ["-c", "import curator.selection"])
    if environment_pins():
        assert unpinned["faiss"]["FAISS_SIMD_LEVEL"] is None  # the probe sees an unpinned load: the check can fail
