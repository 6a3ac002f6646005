"""Stage work on another CPU, emulated: the same bytes under ``qemu-x86_64 -cpu EPYC-Rome`` (AVX2, no AVX-512).

The variables of ``test_cross_machine`` reach every library with a switch; ONNX Runtime and torch's
approximate instructions have none, so these run a stage's numeric core natively and under qemu-user, with
the stage's own pins, and compare md5s. They skip where qemu-user is not installed (``apt install qemu-user``),
and sit in their own file so that pytest-xdist (``--dist loadfile``) runs them beside the data-stage builds.

All three checks share one script, run once natively and once emulated: loading torch, Lightning and the package
under qemu-user takes about 50 s, several times the work checked, and three emulated processes took 10 min of CI.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from test_cross_machine import PARAMS, REPO, SCRUBBED

from curator.determinism import REQUIRED_FLAGS, cpu_flags

STAGE_WORK = '''
import hashlib, sys
from curator.determinism import ENTRY_POINTS, configure_environment
assert ENTRY_POINTS["curator.evaluation"] == ENTRY_POINTS["curator.training"]
configure_environment(threads=ENTRY_POINTS["curator.evaluation"])  # as the eval and train stages' entry points pin it
import numpy as np, soundfile as sf, torch
params, audio, models = sys.argv[1], sys.argv[2], sys.argv[3:]

# SpkSim's speaker embeddings, first: the eval stage sets no training flag
torch.set_num_threads(2)  # eval.num_threads
torch.backends.mkldnn.enabled = False  # eval.onednn
from curator.audio import resample
from curator.evaluation.metrics.task_dependent import speaker_embedding
x, sr = sf.read(audio, dtype="float32")
x = resample(x, sr, 16000)
short = x[:16000] + np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)  # noisy, padded to a window
print("speaker", hashlib.md5(b"".join(speaker_embedding(s).tobytes() for s in (x, short))).hexdigest())

# three optimiser steps of each model, each from the train stage's own settings
from curator.config import load_params, load_section
from curator.training.data import Batch
from curator.training.models import model_options, options_dict
from curator.training.module import EnhancementModule, seed_everything
for name in models:
    p = load_section("train", cfg=load_params(params, [f"train.model.name={name}"]))
    seed_everything(p.seed, 1, p.onednn)
    module = EnhancementModule(p.model.name, options_dict(model_options(p.model.name, p.model.options)), p.loss,
                               p.optim)
    opt = module.configure_optimizers()["optimizer"]
    g = torch.Generator().manual_seed(0)
    clean = torch.randn(2, 8000, generator=g) * 0.1
    batch = Batch(noisy=clean + torch.randn(2, 8000, generator=g) * 0.05, clean=clean, sr=16000)
    for _ in range(3):
        opt.zero_grad()
        module._loss(module.model, batch).backward()
        torch.nn.utils.clip_grad_norm_(module.model.parameters(), p.optim.grad_clip)
        opt.step()
    print(name, hashlib.md5(b"".join(t.numpy().tobytes() for t in module.model.state_dict().values())).hexdigest())
'''
"""The emulated stage work, from the stages' pinned environment: SpkSim's speaker embeddings (features and
network) of a real 4 s recording and of a noisy 1 s cut of it (shorter than one window: padded), as the eval stage
computes them; then three optimiser steps (loss, backward, clipping, AdamW) of each configured model, as the train
stage takes them. Prints one ``<part> <md5>`` line per part."""

MODELS = ("bsrnn", "flowse")

QEMU_AVX2 = ["qemu-x86_64", "-cpu", "EPYC-Rome"]
"""An AVX2 CPU without AVX-512 (AMD Zen 2), emulated by qemu-user: bit-exact IEEE arithmetic, its own answers
to CPUID and to the approximate instructions (``rsqrtps``)."""


QEMU_ONLY = pytest.mark.skipif(shutil.which(QEMU_AVX2[0]) is None or not REQUIRED_FLAGS <= cpu_flags(),
                               reason="needs qemu-user (apt install qemu-user) on an x86_64 CPU with AVX2")


@pytest.fixture(scope="module")
def stage_work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[str, str]]:
    """Each part of ``STAGE_WORK`` -> its md5 (native, emulated)."""
    pysptk_util = pytest.importorskip("pysptk.util")
    script = tmp_path_factory.mktemp("emulated") / "script.py"
    script.write_text(STAGE_WORK)
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env.update(PYTHONPATH=os.pathsep.join([str(REPO / "src"), *sys.path[1:]]), PYTHONHASHSEED="0")
    python = os.path.realpath(sys.executable)  # qemu-user needs the binary itself; PYTHONPATH carries the venv
    parts: list[dict[str, str]] = []
    for prefix in ([], QEMU_AVX2):
        res = subprocess.run([*prefix, python, str(script), str(PARAMS), pysptk_util.example_audio_file(), *MODELS],
                             env=env, capture_output=True, text=True, timeout=1200)
        assert res.returncode == 0, f"{' '.join(prefix) or 'native'}: {res.stderr[-3000:]}"
        lines = [line.split(" ") for line in res.stdout.splitlines()]
        parts.append({w[0]: w[1] for w in lines if len(w) == 2 and w[0] in ("speaker", *MODELS)})
    assert set(parts[0]) == set(parts[1]) == {"speaker", *MODELS}, parts
    return {k: (parts[0][k], parts[1][k]) for k in parts[0]}


@pytest.mark.slow
@QEMU_ONLY
@pytest.mark.parametrize("model", MODELS)
def test_training_steps_are_the_same_on_an_emulated_avx2_cpu(stage_work: dict[str, tuple[str, str]],
                                                             model: str) -> None:
    """The train stage's float32 work gives the same weights on an AVX2-only CPU as on this one. It did not:
    the default AdamW's ``sqrt`` left every optimiser step a few ulps apart under ``qemu-x86_64 -cpu EPYC-Rome``
    (forward, loss, gradients and clipping were identical), so 300 steps ended at another checkpoint; torch's
    fused AdamW (``train.optim.fused``) computes an exact square root. oneDNN is off (``train.onednn``): its
    kernels are chosen by CPU and do not run under qemu-user at all."""
    native, emulated = stage_work[model]
    assert native == emulated, f"{model}: weights after 3 steps differ on an AVX2 CPU: {native} vs {emulated}"


@pytest.mark.slow
@QEMU_ONLY
def test_speaker_embeddings_are_the_same_on_an_emulated_avx2_cpu(stage_work: dict[str, tuple[str, str]]) -> None:
    """SpkSim's embedder gives the same bytes on an AVX2-only CPU. The int8 ONNX graph it ships as did not
    (ONNX Runtime picks its int8 kernels by VNNI support: SpkSim 0.5246 here against 0.5251 under qemu EPYC-Rome);
    its float32 conversion runs through torch under the stage's pins."""
    native, emulated = stage_work["speaker"]
    assert native == emulated, f"speaker embeddings differ on an AVX2 CPU: {native} vs {emulated}"
