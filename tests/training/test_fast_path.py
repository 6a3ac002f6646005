"""The fast training path: worker-independent batches, torch.compile, and the vectorised BSRNN, which must give
the same outputs as a per-band loop (kept here as the reference) and load checkpoints of the earlier layout."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch
from torch import nn

from curator.audio import SAMPLE_RATES
from curator.training.cli import main as train_main
from curator.training.data import load_curated_rows, make_loader
from curator.training.models import build_model
from curator.training.models.bsrnn import BSRNN, BSRNNOptions, band_bins, stft_pad_mode

OFFICIAL_PARAMS = 37_800_844
"""Parameters of BSRNN at its defaults (196 channels x 6 layers), as the official baseline's."""
STATE_DICT_SHA256 = "8b5c0fde9d7a4c457705b7123ca6b275b4f4a67364237c7e9aff60963f471a8a"
"""sha256 of the sorted ``key:shape`` lines of that model's state_dict, taken from the per-group-gather
implementation before vectorisation: checkpoints written by it load into this one."""


# ------------------------------------------------------------------------------------ data loading


def _batches(loader, epochs: int = 2) -> list:
    out = []
    for _ in range(epochs):
        out += [(b.noisy.clone(), b.clean.clone(), b.sr) for b in loader]
    return out


def _assert_same(a: list, b: list) -> None:
    assert len(a) == len(b) > 0
    for (n1, c1, s1), (n2, c2, s2) in zip(a, b, strict=True):
        assert s1 == s2 and torch.equal(n1, n2) and torch.equal(c1, c2)


def test_workers_do_not_change_the_batches(corpus: dict[str, Path]) -> None:
    rows, _ = load_curated_rows(str(corpus["train"]), str(corpus["curated"]))
    serial = _batches(make_loader(rows, 0.25, batch_size=3, seed=5, shuffle=True, num_workers=0))
    parallel = _batches(make_loader(rows, 0.25, batch_size=3, seed=5, shuffle=True, num_workers=2,
                                    prefetch_factor=3, persistent_workers=True))
    _assert_same(serial, parallel)
    assert not torch.equal(serial[0][0], serial[len(serial) // 2][0])  # epochs differ (not a constant stream)
    fresh = _batches(make_loader(rows, 0.25, batch_size=3, seed=5, shuffle=True, num_workers=2,
                                 persistent_workers=False))
    _assert_same(serial, fresh)


def test_dynamic_mixing_does_not_depend_on_workers(corpus: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import test_dynamic_mixing as dm

    pool = dm.pool.__wrapped__(corpus, tmp_path, monkeypatch)
    rows, mixing = dm._mixing(pool["params"])
    serial = _batches(make_loader(rows, 0.25, 3, seed=0, shuffle=True, num_workers=0, mixing=mixing))
    parallel = _batches(make_loader(rows, 0.25, 3, seed=0, shuffle=True, num_workers=2, mixing=mixing))
    _assert_same(serial, parallel)


# ------------------------------------------------------------------------------------ torch.compile


def _compile_or_skip() -> None:
    try:
        torch.compile(nn.Linear(2, 2))(torch.zeros(1, 2))
    except Exception as exc:  # noqa: BLE001 - any backend failure means compile is unusable here
        pytest.skip(f"torch.compile is unusable on this machine: {type(exc).__name__}: {exc}")


def test_compiled_model_trains_two_steps_like_the_plain_one() -> None:
    from types import SimpleNamespace

    from curator.training.backends.native import apply_speed_settings
    from curator.training.loss import MultiResL1SpecLoss

    _compile_or_skip()
    losses = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        module = SimpleNamespace(model=build_model("bsrnn", {"num_channels": 4, "num_layers": 1}))
        apply_speed_settings(SimpleNamespace(cudnn_benchmark=False, matmul_precision="highest", compile=compiled,
                                             compile_mode="default"), module)
        model, loss_fn = module.model, MultiResL1SpecLoss([256, 512], 0.5)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        noisy = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1))
        losses[compiled] = []
        for _ in range(2):
            opt.zero_grad()
            loss = loss_fn(model(noisy, 8000), noisy * 0.5)
            loss.backward()
            opt.step()
            losses[compiled].append(float(loss))
    assert all(torch.isfinite(torch.tensor(v)).all() for v in losses.values())
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)  # same math, compiled kernels


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("CURATOR_TEST_COMPILE_CLI"),
                    reason="inductor compiles every train/val shape in C++: ~14 min on 2 shared CPU cores; "
                           "set CURATOR_TEST_COMPILE_CLI=1 to run it")
def test_compile_trains_two_steps_to_a_finite_loss(corpus: dict[str, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    _compile_or_skip()
    monkeypatch.chdir(tmp_path)
    assert train_main(["--config", str(corpus["params"]), "--curated_list", str(corpus["curated"]),
                       "--exp.name", "compiled", "train.compile=true", "train.max_steps=2",
                       "train.val_every_steps=2", "train.resume_every_steps=null",
                       "train.matmul_precision=high", "train.data.num_workers=1",
                       "train.data.prefetch_factor=1"]) == 0
    live = json.loads((tmp_path / "metrics" / "train" / "metrics.json").read_text())
    assert live["steps"] == 2 and 0 < live["best_val_loss"] < float("inf")
    assert torch.isfinite(torch.tensor(live["train"]["loss"]))
    ckpt = torch.load(tmp_path / "models" / "compiled" / "best.ckpt", weights_only=True)
    assert not any("_orig_mod" in k for k in ckpt["state_dict"])  # the plain model's keys


# ------------------------------------------------------------------------------------ BSRNN vectorisation


def _reference_forward(model: BSRNN, noisy: torch.Tensor, sr: int) -> torch.Tensor:
    """BSRNN's forward written band by band (the straightforward loop the vectorised model replaces)."""
    o = model.opts
    starts, widths = band_bins(o.band_layout, o.win_seconds, o.max_sr)
    n_fft, hop = model.stft_params(sr)
    length = noisy.shape[-1]
    scale = noisy.square().mean(-1, keepdim=True).sqrt() + o.eps if o.input_rms_norm else None
    x = noisy if scale is None else noisy / scale
    window = torch.hann_window(n_fft, dtype=noisy.dtype)
    spec = torch.stft(x, n_fft, hop, window=window, center=True, return_complex=True,
                      pad_mode=stft_pad_mode(o.stft_pad_mode, length, n_fft))
    n_freq = spec.shape[1]
    padded = nn.functional.pad(torch.view_as_real(spec), (0, 0, 0, 0, 0, model.n_bins - n_freq))
    n_active = sum(s < n_freq for s in starts)

    def where(groups: nn.ModuleList, band: int):  # (group, position of the band in it)
        for g in groups:
            if band in g.band_list:
                return g, g.band_list.index(band)
        raise AssertionError(band)

    def norm(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
        var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
        return (x - mean) / torch.sqrt(var + o.eps) * gamma + beta

    dims = (1, 2) if o.norm == "group" else (2,)
    feats = []
    for band in range(n_active):
        g, j = where(model.band_split.groups, band)
        xb = padded[:, starts[band]:starts[band] + widths[band]]  # (B, w, T, 2)
        xb = xb.permute(0, 2, 1, 3).reshape(xb.shape[0], xb.shape[2], -1)  # (B, T, 2w)
        h = norm(xb, g.in_norm.gamma[j], g.in_norm.beta[j], dims)
        feats.append(h @ g.in_proj.weight[j] + g.in_proj.bias[j])
    z = torch.stack(feats, dim=2)  # (B, T, N, C)

    for time_rnn, band_rnn in zip(model.rnns.time_rnns, model.rnns.band_rnns, strict=True):
        for block in (time_rnn, band_rnn):
            b, t, n, c = z.shape
            seqs = z.transpose(1, 2) if block.along == "time" else z  # (B, N, T, C) or (B, T, N, C)
            if o.norm == "group":
                var, mean = torch.var_mean(seqs, dim=(1, 2, 3), correction=0, keepdim=True)
            else:
                var, mean = torch.var_mean(seqs, dim=(2, 3), correction=0, keepdim=True)
            y = (seqs - mean) / torch.sqrt(var + block.norm.eps) * block.norm.weight + block.norm.bias
            y, _ = block.rnn(y.reshape(-1, y.shape[2], c))
            y = block.proj(y).reshape(seqs.shape)
            z = z + (y.transpose(1, 2) if block.along == "time" else y)

    def head(h: BSRNN) -> torch.Tensor:
        out = torch.zeros(z.shape[0], z.shape[1], model.n_bins, 2)
        for band in range(n_active):
            g, j = where(h.groups, band)
            zb = norm(z[:, :, band], g.out_norm.gamma[j], g.out_norm.beta[j], (1, 2) if o.norm == "group" else (2,))
            hid = torch.tanh(zb @ g.out_hidden.weight[j] + g.out_hidden.bias[j])
            y = nn.functional.glu(hid @ g.out_proj.weight[j] + g.out_proj.bias[j], dim=-1)
            out[:, :, starts[band]:starts[band] + widths[band]] = y.reshape(y.shape[0], y.shape[1], -1, 2)
        return torch.view_as_complex(out[:, :, :n_freq].contiguous()).transpose(1, 2)

    est = head(model.mask) * spec
    if model.residual is not None:
        est = est + head(model.residual)
    enhanced = torch.istft(est, n_fft, hop, window=window, center=True, length=length)
    return enhanced if scale is None else enhanced * scale


@pytest.mark.parametrize("options", [{}, {"residual_mask": False, "norm": "frame", "input_rms_norm": True,
                                          "stft_pad_mode": "constant"}])
@pytest.mark.parametrize("sr", [16000, 48000])
def test_vectorised_bsrnn_equals_the_per_band_loop(options: dict, sr: int) -> None:
    torch.manual_seed(1)
    model = BSRNN(BSRNNOptions(num_channels=12, num_layers=2, **options))
    with torch.no_grad():  # random affine weights so that every per-band parameter matters
        for name, p in model.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.uniform_(-1.5, 1.5)
    noisy = torch.randn(2, int(0.31 * sr))
    with torch.no_grad():
        fast, ref = model(noisy, sr), _reference_forward(model, noisy, sr)
    assert fast.shape == ref.shape == noisy.shape
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    grads = torch.autograd.grad(model(noisy, sr).square().sum(), [p for p in model.parameters()], allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_lower_rate_leaves_upper_band_weights_without_gradient() -> None:
    torch.manual_seed(0)
    model = build_model("bsrnn", {"num_channels": 8, "num_layers": 1})
    model(torch.randn(1, 1600), 8000).square().sum().backward()
    for heads in (model.band_split.groups, model.mask.groups):
        for g in heads:
            grad = g.in_proj.weight.grad if hasattr(g, "in_proj") else g.out_proj.weight.grad
            if g.band_list[0] < 20:  # 8 kHz uses the first 20 bands (DC + 200 Hz bands up to 4 kHz)
                assert grad.abs().sum() > 0
            else:
                assert grad is None or not grad.any()


def test_official_size_and_checkpoint_layout_are_unchanged() -> None:
    model = build_model("bsrnn", {})
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL_PARAMS
    sd = model.state_dict()
    lines = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(sd.items()))
    assert hashlib.sha256(lines.encode()).hexdigest() == STATE_DICT_SHA256
    model.load_state_dict(sd, strict=True)


def test_every_rate_runs_and_a_checkpoint_round_trips(tmp_path: Path) -> None:
    from curator.training.checkpoint import load_model, save_checkpoint

    torch.manual_seed(0)
    opts = {"num_channels": 8, "num_layers": 1}
    model = build_model("bsrnn", opts).eval()
    save_checkpoint(tmp_path / "m.ckpt", model, "bsrnn", opts)
    loaded, _ = load_model(tmp_path / "m.ckpt")
    for sr in SAMPLE_RATES:
        x = torch.randn(1, sr // 7)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x, sr), model(x, sr), atol=0, rtol=0)


def test_the_pipeline_checkpoint_of_the_earlier_layout_loads() -> None:
    from curator.training.checkpoint import load_model

    path = Path(__file__).resolve().parents[2] / "models" / "mini_bsrnn" / "best.ckpt"
    if not path.is_file():
        pytest.skip(f"no pipeline checkpoint at {path} (run `dvc repro train`)")
    model, payload = load_model(path)  # strict load_state_dict
    sr = 16000
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(1, sr // 4), sr)).all()


def test_adamw_is_fused_unless_a_mixed_precision_clips_gradients(capsys) -> None:
    """``train.optim.fused`` gives torch's fused AdamW (exact square roots: the same update on every CPU), except
    where Lightning refuses it: a mixed precision that clips gradients runs the per-tensor AdamW, and says so."""
    from types import SimpleNamespace

    from curator.training.module import EnhancementModule
    from curator.training.params import LossParams, OptimParams

    def fused(precision: str | None, **optim) -> bool:
        params = OptimParams(**{"lr": 1e-3, "weight_decay": 0.0, "lr_gamma": 0.9, "lr_step_epochs": 1, **optim})
        module = EnhancementModule("bsrnn", {"num_channels": 4, "num_layers": 1}, LossParams([256], 0.5), params)
        if precision is not None:
            module._trainer = SimpleNamespace(precision=precision, is_global_zero=True)
        return module.configure_optimizers()["optimizer"].defaults["fused"]

    assert fused(None, grad_clip=0.5, fused=True) is True
    assert fused("32-true", grad_clip=0.5, fused=True) is True
    assert fused("bf16-mixed", grad_clip=None, fused=True) is True
    assert fused("32-true", grad_clip=0.5, fused=False) is False
    capsys.readouterr()
    assert fused("bf16-mixed", grad_clip=0.5, fused=True) is False
    assert "cannot clip a fused optimiser's gradients" in capsys.readouterr().out
