"""The models on a CUDA device: the same outputs as on CPU, a finite bf16 training step at the official size,
a seeded FlowSE sampler, torch.compile agreeing with eager. Skipped without a GPU (``benchmarks/gpu_checks.sh``
runs them on one)."""

from __future__ import annotations

import copy

import pytest
import torch

from curator.training.loss import MultiResL1SpecLoss
from curator.training.models import build_model

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

MINI = {"num_channels": 16, "num_layers": 2}
FLOWSE_MINI = {"num_channels": 16, "num_layers": 1, "decoder_channels": 8, "sampler_steps": 4}
SECONDS = 1.0


@pytest.fixture(autouse=True)
def exact_fp32():
    """No TF32 in matmuls or convolutions while comparing with the CPU."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _pair(name: str, options: dict) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    cpu = build_model(name, options).eval()
    return cpu, copy.deepcopy(cpu).cuda()


@pytest.mark.parametrize("sr", [8000, 16000, 48000])
def test_bsrnn_on_cuda_matches_the_cpu(sr: int) -> None:
    cpu, gpu = _pair("bsrnn", MINI)
    x = torch.randn(2, int(SECONDS * sr), generator=torch.Generator().manual_seed(1)) * 0.1
    with torch.no_grad():
        expected, got = cpu(x, sr), gpu(x.cuda(), sr).cpu()
    assert got.shape == expected.shape == x.shape
    torch.testing.assert_close(got, expected, atol=2e-4, rtol=1e-3)


def test_gradients_on_cuda_match_the_cpu() -> None:
    cpu, gpu = _pair("bsrnn", MINI)
    cpu.train(), gpu.train()
    loss = MultiResL1SpecLoss([256, 512], 0.5, window="rect", reduction="sum")
    x = torch.randn(2, 16000, generator=torch.Generator().manual_seed(2)) * 0.1
    loss(cpu(x, 16000), 0.5 * x).backward()
    loss.cuda()(gpu(x.cuda(), 16000), 0.5 * x.cuda()).backward()
    for (name, a), b in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        torch.testing.assert_close(b.grad.cpu(), a.grad, atol=1e-3, rtol=1e-2, msg=lambda m, n=name: f"{n}: {m}")


def test_official_size_bf16_step_is_finite_and_keeps_fp32_weights() -> None:
    torch.manual_seed(0)
    model = build_model("bsrnn", {}).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-6)
    loss_fn = MultiResL1SpecLoss([256, 512, 768, 1024], 0.5, window="rect", reduction="sum").cuda()
    x = torch.randn(2, 48000, device="cuda") * 0.1
    losses = []
    for _ in range(3):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = loss_fn(model(x, 48000), 0.5 * x)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]  # a fixed batch: three steps lower the loss
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())


def test_flowse_sampler_on_cuda_is_seeded_and_matches_the_cpu() -> None:
    cpu, gpu = _pair("flowse", FLOWSE_MINI)
    x = torch.randn(1, 16000, generator=torch.Generator().manual_seed(3)) * 0.1
    with torch.no_grad():
        a, b = gpu(x.cuda(), 16000), gpu(x.cuda(), 16000)
        expected = cpu(x, 16000)
    assert torch.equal(a, b) and a.shape == x.shape and torch.isfinite(a).all()
    # the sampler's noise is drawn on the CPU generator and moved, so both devices start from the same state
    torch.testing.assert_close(a.cpu(), expected, atol=1e-3, rtol=1e-2)


def test_compiled_model_agrees_with_eager() -> None:
    _, gpu = _pair("bsrnn", MINI)
    compiled = copy.deepcopy(gpu)
    compiled.compile()
    x = torch.randn(2, 16000, device="cuda") * 0.1
    with torch.no_grad():
        torch.testing.assert_close(compiled(x, 16000), gpu(x, 16000), atol=1e-4, rtol=1e-3)
