"""Evaluation models on a CUDA device: SpkSim's RawNet3 embeds, and LID's OWSM-CTC encodes, as on the CPU. Skipped without a GPU
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


def test_owsm_ctc_on_cuda_matches_the_cpu(tmp_path: Path) -> None:
    """OWSM-CTC with the official frontend and block structure (narrower; seeded random weights in ESPnet's layout,
    the mel matrix drawn: no librosa on the GPU machine) on cuda, fp32 without TF32, gives the CPU's encoder output
    to float tolerance and the same greedy tokens on 1.3 s and 20 s of a probe signal."""
    import dataclasses

    from curator.evaluation.metrics.owsm_ctc import (
        load_owsm_ctc,
        probe_signal,
        small_config,
        write_espnet_download,
    )

    cfg = dataclasses.replace(small_config(), n_mels=128, size=128, cgmlp_units=256, cgmlp_kernel=31, num_blocks=6,
                              linear_units=256, merge_kernel=31, interctc_layers=(2, 4, 5),
                              cross_attention=(False, False, True, False, False, True), prompt_size=64,
                              prompt_heads=4, prompt_units=128)
    folder = write_espnet_download(tmp_path / "owsm_ctc", cfg, seed=0, librosa_mel=False)
    cpu, gpu = load_owsm_ctc(folder, "cpu"), load_owsm_ctc(folder, "cuda")
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for seconds in (1.3, 20.0):
            x = torch.from_numpy(probe_signal(seconds, 0))[None]
            with torch.inference_mode():
                a, b = cpu.encode(x), gpu.encode(x.cuda()).cpu()
                assert cpu.greedy(x) == gpu.greedy(x.cuda()), seconds
            torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-3 * float(a.abs().max()))
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_owsm_s2t_on_cuda_matches_the_cpu(tmp_path: Path) -> None:
    """OWSM v3.1 with the official frontend (80 mels; narrower and shallower, seeded random weights in ESPnet's
    layout, the mel matrix drawn) on cuda, fp32 without TF32, gives the CPU's encoder output to float tolerance and
    the same best hypothesis and text on 1.3 s and 4 s of a probe signal, in English and with the language
    identified, and the same long-form text on 35 s (the model has a timestamp every second)."""
    import dataclasses

    pytest.importorskip("sentencepiece")
    from curator.evaluation.metrics.owsm_ctc import probe_signal
    from curator.evaluation.metrics.owsm_s2t import (
        load_owsm_s2t,
        max_tokens,
        small_config,
        write_espnet_download,
    )

    small = small_config(time_step=1.0)
    enc = dataclasses.replace(small.encoder, n_mels=80, size=128, cgmlp_units=256, cgmlp_kernel=31, num_blocks=4,
                              linear_units=256, merge_kernel=31, cross_attention=(False,) * 4)
    cfg = dataclasses.replace(small, encoder=enc, decoder_units=256, decoder_blocks=4)
    folder = write_espnet_download(tmp_path / "owsm_v3.1", cfg, seed=0, librosa_mel=False)
    cpu, gpu = load_owsm_s2t(folder, "cpu"), load_owsm_s2t(folder, "cuda")
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for seconds in (1.3, 4.0):
            x = probe_signal(seconds, 0)
            with torch.inference_mode():
                a = cpu.model.encode(torch.from_numpy(x)[None])
                b = gpu.model.encode(torch.from_numpy(x)[None].cuda())
                primer = cpu.model.primer("<eng>")
                ya, _ = cpu.model.decode(a, primer, max_tokens(len(x)))
                yb, _ = gpu.model.decode(b, primer, max_tokens(len(x)))
            torch.testing.assert_close(b.cpu(), a, rtol=1e-3, atol=1e-3 * float(a.abs().max()))
            assert ya == yb, seconds
            for lang in ("en", None):
                assert cpu.transcribe(x, lang) == gpu.transcribe(x, lang, "cuda"), (seconds, lang)
        long = probe_signal(35.0, 0)
        assert cpu.transcribe(long, "en") == gpu.transcribe(long, "en", "cuda")
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn
