"""Evaluation models on a CUDA device: SpkSim's RawNet3 embeds as on the CPU. Skipped without a GPU
(``benchmarks/gpu_checks.sh`` runs it on one); imports only what the lent GPU machine has plus the wheels that
script installs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_rawnet3_on_cuda_matches_the_cpu(tmp_path: Path) -> None:
    """The official-size RawNet3 (seeded random weights in ESPnet's layout) on cuda, fp32 without TF32, gives the
    CPU's embeddings to float tolerance on 0.5 s and 4 s of noise."""
    pytest.importorskip("asteroid_filterbanks")
    from curator.evaluation.metrics.rawnet3 import RawNet3Config, embed, load_rawnet3, write_espnet_download

    folder = write_espnet_download(tmp_path / "rawnet3", RawNet3Config(), seed=0)
    cpu, gpu = load_rawnet3(folder, "cpu"), load_rawnet3(folder, "cuda")
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        rng = np.random.default_rng(0)
        for seconds in (0.5, 4.0):
            x = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
            a, b = embed(cpu, x, "cpu"), embed(gpu, x, "cuda")
            assert float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)) > 0.99999, seconds
            np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-3 * float(np.abs(a).max()))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
