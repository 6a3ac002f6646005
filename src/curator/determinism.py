"""Same bytes on every x86_64 machine: pinned numeric environment, ISA-independent ONNX Runtime sessions.

Two clean runs on one machine always agreed; runs on machines with other CPUs did not, because several
libraries choose their floating-point kernels from the CPU at run time (measured with
``benchmarks/perturb_machine.py`` and ``qemu-x86_64 -cpu Haswell``):

- ONNX Runtime's MLAS picks AVX-512 or AVX2 kernels by CPUID, with no override. Its ``Softmax`` (the
  sum-of-exponentials kernel accumulates 16 or 8 lanes) and, at ``ORT_ENABLE_ALL``, the NCHWc convolution
  layout (block 16 or 8 channels) change results by 1e-7..1e-5: piper TTS audio and DNSMOS scores differed
  between an AVX-512 CPU and an AVX2-only one. :func:`ort_session_options` (basic graph optimisations, one
  thread, sequential) and :func:`decompose_softmax` (Softmax as ReduceMax/Sub/Exp/ReduceSum/Div, whose
  kernels are compiled once and not dispatched) make those outputs bit-identical across the two.
- numpy dispatches float64 exp/log/power/tan/... and float32 log10/power/... to AVX-512 (SVML) code on
  CPUs that have it: results differ in the last bit. float64 work quantised to float32 or 16-bit audio
  absorbs that (a flip needs a 1e-16 change to straddle a 6e-8 rounding boundary), so hashed audio is
  computed in float64 and quantised once; :data:`NUMPY_NO_AVX512` removes the dispatch where the
  environment can be set before numpy is imported.
- OpenBLAS (SkylakeX vs Haswell kernels), MKL (AVX-512 paths on Intel only) and oneDNN / ATen (AVX-512 vs
  AVX2 kernels) change float32 matrix products and FFTs in the last bits. :func:`configure_environment`
  pins all of them to their AVX2 code path, which every CPU of the supported kind (x86_64 with AVX2 and
  FMA) has; torch work whose result is hashed runs in float64 and is rounded where it is stored.
- Training and evaluation run float32 torch on the CPU for many steps, so every last bit carries. With the pins
  above, two more things made a checkpoint CPU-dependent (measured against ``qemu-x86_64 -cpu EPYC-Rome``, an
  AVX2-only Zen 2): the default AdamW's ``sqrt`` is not correctly rounded and its last bits changed with the CPU
  (forward, loss, gradients and clipping were identical; each optimiser step was not), and oneDNN picks its
  LSTM and convolution kernels by CPU. ``train.optim.fused`` (torch's fused AdamW: an exact square root) and
  ``train.onednn`` / ``eval.onednn`` off (ATen's own kernels, pinned to AVX2 with the rest) remove both: the
  train stage then wrote the same checkpoint there as here.
- faiss (the selection's k-means and exact inner-product search, float32) dispatches its distance kernels
  at run time (NONE / AVX2 / AVX-512). The level changes the order in which the selections' coverage rounds
  pick rows on the mini data (``FAISS_SIMD_LEVEL=NONE`` against AVX2, measured: the same rows, 2 of 88 lines
  of the pair-level list and 8 of 112 of the source selection moved, so other bytes); a ``source_select`` output committed from
  an earlier machine did not reproduce on an AVX2-only AMD EPYC, every other data stage did. An AVX-512 CPU
  runs faiss's AVX-512 kernels unless ``FAISS_SIMD_LEVEL`` is pinned, as it now is.

Thread counts are pinned inside the process (:func:`pin_threads`): a reduction split over a different
number of threads sums in a different order.

Where the pins are applied matters as much as what they are. ``python -m curator.selection.sources`` imports
the packages ``curator.selection`` and ``curator.selection.sources`` before it runs their ``__main__``, and
those load numpy, scipy and faiss: a pin set in ``__main__`` came too late for faiss, numpy and OpenBLAS, so on
an AVX-512 CPU the selections ran faiss's AVX-512 kernels all the same, and the committed ``source_select``
list did not reproduce there (measured on an AMD EPYC with AVX-512: the same 112 lines, 11 in another order;
under ``qemu-x86_64 -cpu Haswell-v4`` or ``Skylake-Server-v4`` it did reproduce, because there the ISA never
differed). The stage entry points are therefore pinned by :func:`pin_entry_point`, which ``curator/__init__``
calls: the top-level package is the first module any ``python -m curator.<...>`` imports.

This module imports no numeric library at import time, so that :func:`configure_environment` can run
before numpy, torch or onnxruntime are loaded (their kernel choice is fixed when they load or first run).
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

NUMPY_NO_AVX512 = "X86_V4 AVX512_ICL AVX512_SPR"
"""numpy >= 2.4 names of its AVX-512 dispatch targets (``NPY_DISABLE_CPU_FEATURES``; unavailable ones are
ignored, so this is safe on any x86_64 CPU)."""

AVX2_PINS: Mapping[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",  # OpenBLAS: AVX2 kernels (SkylakeX/Zen would be picked by CPUID)
    "MKL_CBWR": "AVX2,STRICT",  # MKL conditional numerical reproducibility: the AVX2 code path everywhere
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",  # oneDNN (torch mkldnn convolutions): no AVX-512 JIT kernels
    "DNNL_MAX_CPU_ISA": "AVX2",  # the same, older name
    "ATEN_CPU_CAPABILITY": "avx2",  # torch's vectorised ATen kernels: AVX2 build, not AVX-512
    "FAISS_SIMD_LEVEL": "AVX2",  # faiss (dynamic-dispatch build): AVX2 distance kernels, not AVX-512
}
"""Variables that pin a library to its AVX2 code path. Set only on CPUs that have AVX2 and FMA: on older
ones OpenBLAS would crash on Haswell kernels, so those machines keep the libraries' own choice."""

ANY_X86_PINS: Mapping[str, str] = {"NPY_DISABLE_CPU_FEATURES": NUMPY_NO_AVX512}
"""Variables that are safe on every x86_64 CPU."""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""Thread-count variables read when the libraries load (:func:`pin_threads` also sets them at run time)."""

REQUIRED_FLAGS = frozenset({"avx2", "fma"})
"""CPU flags of the supported kind of machine (x86-64-v3), on which :data:`AVX2_PINS` are safe."""

ORT_THREADS = 1
"""ONNX Runtime threads per session in hashed paths: parallelism comes from worker processes."""


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that is unavailable)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def is_x86_64() -> bool:
    return platform.machine().lower() in ("x86_64", "amd64")


def environment_pins() -> dict[str, str]:
    """The variables :func:`configure_environment` would set on this machine (empty off x86_64)."""
    if not is_x86_64():
        return {}
    pins = dict(ANY_X86_PINS)
    if REQUIRED_FLAGS <= cpu_flags():
        pins.update(AVX2_PINS)
    return pins


ENTRY_POINTS: Mapping[str, int | None] = {
    "curator.datasets": 1,  # prepare, manifest, sources
    "curator.scoring.probe": 1,
    "curator.scoring": 1,
    "curator.scoring.sources": 1,  # source_score
    "curator.selection": None,  # select: threads from select.threads
    "curator.selection.sources": None,  # source_select
    "curator.datasets.simulation.from_selection": 1,  # source_simulate
    "curator.evaluation.efficacy select": None,  # the efficacy matrix's selection cells (data, hashed)
    "curator.training": 1,  # train: torch's own threads from train.num_threads
    "curator.evaluation": 1,  # eval: torch threads from eval.num_threads, metric workers single-threaded
    "curator.evaluation.efficacy": 1,  # the matrix's train, eval and report cells
}
"""Every stage's entry point, as ``dvc.yaml`` runs it (``python -m <module> [subcommand]``) -> the ``threads``
its process pins in the environment (``None``: the stage sets its own thread pools; training and evaluation
then set torch's pool from their ``num_threads`` param). Training and evaluation are pinned like the data stages
since their float32 work became portable too: with oneDNN off (``train.onednn``, ``eval.onednn``) and the fused
AdamW (``train.optim.fused``), a training run gives the same checkpoint on every x86-64-v3 CPU."""


def entry_point(argv: Sequence[str]) -> str | None:
    """``"<module>"`` or ``"<module> <first argument>"`` of a ``python [options] -m <module> ...`` command line
    (``sys.orig_argv``), or ``None`` when it runs a script, ``-c`` code or nothing."""
    args = list(argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-") or arg == "-" or arg.startswith("--"):
            return None  # a script, stdin, or a long option such as --version
        cluster = arg[1:]
        for j, flag in enumerate(cluster):
            rest = cluster[j + 1:]
            if flag == "c":
                return None
            if flag in "XW":  # an option with a value: attached, or the next argument
                i += 0 if rest else 1
                break
            if flag == "m":
                module = rest or (args[i + 1] if i + 1 < len(args) else "")
                tail = args[i + 1 if rest else i + 2:]
                return f"{module} {tail[0]}" if tail and not tail[0].startswith("-") else module or None
        i += 1
    return None


def pinned_entry(argv: Sequence[str]) -> str | None:
    """The :data:`ENTRY_POINTS` key a command line runs, or ``None`` when it runs no data stage."""
    line = entry_point(argv)
    if line is None:
        return None
    key = line if line in ENTRY_POINTS else line.split(" ", 1)[0]
    return key if key in ENTRY_POINTS else None


def pin_entry_point(argv: Sequence[str] | None = None) -> dict[str, str]:
    """Pin the environment now when this process runs one of :data:`ENTRY_POINTS` (``curator/__init__`` calls
    it, before any subpackage loads numpy, faiss or torch). Returns the variables it set."""
    key = pinned_entry(getattr(sys, "orig_argv", ()) if argv is None else argv)
    return {} if key is None else configure_environment(threads=ENTRY_POINTS[key])


def configure_environment(threads: int | None = 1, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Pin the numeric libraries' kernel choice and thread counts through the environment.

    Call it first thing in a stage's entry point (``__main__``), before numpy, torch or onnxruntime are
    imported: the variables are read when those libraries load (MKL and oneDNN: when first used), and
    worker processes inherit them. A variable that is already set is left alone, so a deliberate choice
    still wins. ``NPY_DISABLE_CPU_FEATURES`` is skipped once numpy is loaded (it would then apply to spawned
    workers only). Returns the variables this call set.
    """
    env = os.environ if environ is None else environ
    wanted = environment_pins()
    if threads is not None:
        wanted.update(dict.fromkeys(THREAD_VARIABLES, str(threads)))
    if environ is None and "numpy" in sys.modules:
        wanted.pop("NPY_DISABLE_CPU_FEATURES", None)
    set_now = {k: v for k, v in wanted.items() if k not in env}
    env.update(set_now)
    return set_now


def pin_threads(threads: int = 1) -> Any:
    """Limit BLAS and OpenMP pools in this process (threadpoolctl); usable as a context manager.

    OpenBLAS splits a long dot product's sum across its threads, so the thread count changes the result.
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def ort_session_options(threads: int = ORT_THREADS) -> Any:
    """ONNX Runtime session options whose kernels do not depend on the CPU's vector width.

    ``ORT_ENABLE_BASIC`` keeps constant folding and redundant-node removal but not the layout
    optimisations of ``ORT_ENABLE_ALL``: the NCHWc convolution blocks 16 channels on AVX-512 and 8 on AVX2,
    which changed DNSMOS outputs by up to 6e-7 between the two; with basic optimisations they are equal.
    Sequential execution and a fixed thread count fix every reduction's order.
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    so.add_session_config_entry("session.set_denormal_as_zero", "0")
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


def decompose_softmax(model: Any) -> Any:
    """Replace every ONNX ``Softmax`` by ``Exp(x - ReduceMax(x)) / ReduceSum(...)`` along the same axis.

    ONNX Runtime's Softmax runs MLAS kernels chosen by CPUID (AVX-512 sums 16 lanes, AVX2 8), so attention
    weights, and everything after them, differed in the last bits between CPUs. The decomposed ops use
    kernels compiled once for every x86_64 CPU. Only opset 13..17 graphs (``ReduceMax`` axes as an
    attribute, ``ReduceSum`` axes as an input) are handled; others raise ``ValueError``.
    """
    import onnx
    from onnx import helper

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if not 13 <= opset <= 17:
        raise ValueError(f"decompose_softmax handles ONNX opset 13..17, the model has {opset}")
    nodes = []
    axes_inputs: dict[int, str] = {}
    for node in model.graph.node:
        if node.op_type != "Softmax" or node.domain not in ("", "ai.onnx"):
            nodes.append(node)
            continue
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), -1)
        if axis not in axes_inputs:
            axes_inputs[axis] = f"det_softmax_axes_{axis}".replace("-", "m")
            model.graph.initializer.append(onnx.numpy_helper.from_array(
                _int64_array([axis]), axes_inputs[axis]))
        x, y, base = node.input[0], node.output[0], f"det_softmax_{len(nodes)}_{node.name}"
        nodes += [
            helper.make_node("ReduceMax", [x], [f"{base}_max"], axes=[axis], keepdims=1, name=f"{base}_max"),
            helper.make_node("Sub", [x, f"{base}_max"], [f"{base}_shift"], name=f"{base}_sub"),
            helper.make_node("Exp", [f"{base}_shift"], [f"{base}_exp"], name=f"{base}_exp"),
            helper.make_node("ReduceSum", [f"{base}_exp", axes_inputs[axis]], [f"{base}_sum"], keepdims=1,
                             name=f"{base}_sum"),
            helper.make_node("Div", [f"{base}_exp", f"{base}_sum"], [y], name=f"{base}_div"),
        ]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def _int64_array(values: list[int]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.int64)
