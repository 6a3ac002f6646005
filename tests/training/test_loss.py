"""The baseline loss, and that a few optimiser steps on a tiny batch reduce it."""

from __future__ import annotations

import torch

from curator.training.loss import MultiResL1SpecLoss
from curator.training.models import build_model

SR = 16000


def make_loss(scale_invariant: bool = True) -> MultiResL1SpecLoss:
    return MultiResL1SpecLoss([256, 512], time_weight=0.5, scale_invariant=scale_invariant,
                              normalize_variance=True, eps=1e-8, window="hann", reduction="mean")


def test_zero_for_a_perfect_estimate_and_scale_invariant() -> None:
    torch.manual_seed(0)
    target = torch.randn(2, SR // 2)
    loss = make_loss()
    assert loss(target.clone(), target).item() < 1e-5
    assert loss(3.0 * target, target).item() < 1e-4
    assert make_loss(scale_invariant=False)(3.0 * target, target).item() > 0.1
    assert loss(target + 0.3 * torch.randn_like(target), target).item() > 0.05


def test_speech_free_rows_penalise_any_output() -> None:
    """Scale invariance would make every estimate free for a zero target; the loss must not."""
    torch.manual_seed(0)
    zero = torch.zeros(1, SR // 2)
    assert make_loss()(0.1 * torch.randn(1, SR // 2), zero).item() > 0.01
    assert make_loss()(torch.zeros(1, SR // 2), zero).item() == 0.0


def test_a_few_steps_reduce_the_loss_on_a_tiny_batch() -> None:
    torch.manual_seed(0)
    t = torch.arange(SR // 4) / SR
    clean = torch.stack([0.3 * torch.sin(2 * torch.pi * f * t) for f in (220.0, 330.0)])
    noisy = clean + 0.1 * torch.randn_like(clean)
    model = build_model("bsrnn", {"num_channels": 8, "num_layers": 1})
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    loss_fn = make_loss()
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = loss_fn(model(noisy, SR), clean)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-3:]) < 0.8 * losses[0], losses
