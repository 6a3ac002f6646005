"""Cross-machine determinism: the data stages give the same bytes under another machine's numeric settings.

Two tiny builds run in subprocesses, one with the defaults and 2 threads/workers, the other with 1 thread,
1 worker and every kernel-selection variable that is safe on any x86_64 CPU pointed elsewhere (numpy
without its AVX-512 dispatch, torch's ATen at its baseline build, oneDNN at SSE4.1, MKL in compatible
mode, OpenBLAS on Haswell kernels where the CPU has AVX2). prepare, manifest, probe, score and select must
produce identical files (the selection also on 1 thread against 2); a failure names the first file that
differs. ONNX Runtime chooses kernels by CPUID with no override, so its part is checked with
``qemu-x86_64 -cpu Haswell`` (see curator.determinism) instead.
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
