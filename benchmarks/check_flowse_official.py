"""``flowse`` at its defaults against the official FlowSE baseline, ``baseline_code`` of the URGENT 2026 checkout.

The official FlowSE (``conf/models/BSRNN_flowse.yaml``, ``model_type: flowse``) is ``baseline_code.flow_model.
FlowSEModel``: ESPnet's ``STFTEncoder``/``STFTDecoder`` (1536/384 samples at 48 kHz, exponent 0.667, factor 0.065),
the network ``baseline_code.models.bsrnn_flowse.BSRNN`` (384 channels x 6 layers), the flow of ``models/odes.py``
and the Euler sampler of ``sampling/``. This check builds that model from the checkout with its own
initialisation (its norms' affine weights drawn at random too, so that a wrong mapping of them shows), copies
every weight into this project's ``flowse`` (the two band splits, the condition projection, the Fourier
frequencies of ``t``, the BLSTM stack, the two band heads with their per-bin channel order, the 5x5 convolutions)
and compares, at each of the seven URGENT rates, on the same noise:

- ``encode``: the compressed spectrum (``speech_to_feature``);
- ``field``: the learned vector field at random ``t`` on a perturbed state (``FlowSEModel.forward``);
- ``loss``: the flow-matching loss of a batch with the same draws of ``t`` and ``z`` (``forward_step``);
- ``enhance``: the Euler sampler from the same prior draw, decoded to a waveform (what ``enhance`` does,
  without its hard-coded ``.cuda()``).

It also runs ``torch_ema`` (the official trainer's EMA) beside this project's ``WeightEMA`` on the same updates.

ESPnet and the official packages are not dependencies of this project; the check runs against the official
interpreter's site of ``third_party/README.md`` (section 2) and a checkout fetched as there::

    python benchmarks/check_flowse_official.py --espnet-site /tmp/official-venv/lib/python3.11/site-packages \\
        --checkout third_party/urgent2026_challenge_track1

Prints JSON: per rate and quantity the largest absolute difference and the official value's scale; exits 1 when
a relative difference exceeds ``--tolerance``. ``--ours-seed N`` goes the other way: this project's seeded small
model copied into the official network, with the official output figures that ``tests/training/test_flowse.py``
pins, so CI checks the equivalence without the checkout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _espnet_site import add_espnet_site, randomise_group_norms  # noqa: E402  (this script's folder)

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
NORM_AFFINE_STD = 0.2
"""Spread of the random affine weights given to the norms (their init is 1 and 0, which hides a mix-up)."""
FLOW_KEYS = ("n_fft", "hop_length", "spec_abs_exponent", "spec_factor", "sigma_min", "sigma_max", "t_eps",
             "ema_decay")
"""Options of ``flowse`` that are also keys of the official config (same names, same meaning)."""


def official_cfg(checkout: Path, channels: int, layers: int) -> SimpleNamespace:
    """The official ``conf/models/BSRNN_flowse.yaml`` with the network size replaced."""
    import yaml

    cfg = yaml.safe_load((checkout / "conf/models/BSRNN_flowse.yaml").read_text())
    return SimpleNamespace(**(cfg | {"bsrnn_hidden": channels, "num_layer": layers}))


def official_model(checkout: Path, cfg: SimpleNamespace) -> torch.nn.Module:
    sys.path.insert(0, str(checkout))
    try:
        from baseline_code.flow_model import FlowSEModel
    except ImportError as exc:
        raise SystemExit(f"the official FlowSE is not importable ({exc}): --checkout must be a checkout of "
                         "urgent-challenge/urgent2026_challenge_track1 and --espnet-site the official interpreter's "
                         "site (third_party/README.md, section 2)") from exc
    model = FlowSEModel(cfg=cfg)
    randomise_group_norms(model.dnn, NORM_AFFINE_STD)
    return model.train(False, no_ema=True)  # eval mode without swapping in the EMA's copy of the initial weights


def official_to_ours(dnn: torch.nn.Module, ours: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The official network's weights under this project's names and shapes: ``curator.training.official_weights``,
    the mapping ``curator import-official`` and ``train.init_from`` use."""
    from curator.training.official_weights import official_to_ours as mapping

    return mapping(dnn.state_dict(), ours, "flowse")


def ours_to_official(ours: torch.nn.Module, dnn: torch.nn.Module) -> None:
    """The inverse of :func:`official_to_ours`: this project's weights copied into the official network (every
    one)."""
    from curator.training.official_weights import ours_to_official as mapping

    dnn.load_state_dict(mapping(ours.state_dict(), ours, "flowse"), strict=True)


def seeded_ours(channels: int, layers: int, decoder_channels: int, seed: int, steps: int) -> torch.nn.Module:
    """This project's ``flowse`` from its own seeded initialisation, every norm's affine weights drawn too (the
    model ``tests/training/test_flowse.py`` checks against the figures ``--ours-seed`` prints)."""
    from curator.training.models import build_model

    torch.manual_seed(seed)
    model = build_model("flowse", {"num_channels": channels, "num_layers": layers,
                                   "decoder_channels": decoder_channels, "sampler_steps": steps,
                                   "sampler_seed": seed})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * NORM_AFFINE_STD + (1.0 if name.endswith(("weight", "gamma")) else 0.0))
    return model.eval()


def seeded_pair(sr: int, seconds: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(noisy, clean) for two examples at ``sr`` from their own generator (the same in the test and here)."""
    g = torch.Generator().manual_seed(seed + sr)
    clean = torch.randn(2, int(sr * seconds), generator=g) * 0.1
    return clean + torch.randn(clean.shape, generator=g) * 0.05, clean


def compare_ema(decay: float, updates: int) -> float:
    """Largest difference between ``torch_ema`` and :class:`WeightEMA` over ``updates`` random steps."""
    from torch_ema import ExponentialMovingAverage

    from curator.training.module import WeightEMA

    torch.manual_seed(0)
    net = torch.nn.Linear(6, 5)
    theirs, ours = ExponentialMovingAverage(net.parameters(), decay=decay), WeightEMA(net, decay)
    worst = 0.0
    for _ in range(updates):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        theirs.update(net.parameters())
        ours.update(net)
        worst = max(worst, *(float((a - b).abs().max())
                             for a, b in zip(theirs.shadow_params, ours.model.parameters(), strict=True)))
    return worst


@contextlib.contextmanager
def _randn_like_returns(z: torch.Tensor):
    """``torch.randn_like`` returns ``z`` (once) inside the block: the official code's one draw of each kind."""
    original, calls = torch.randn_like, []

    def fake(like: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        if calls or like.shape != z.shape or like.dtype != z.dtype:
            raise RuntimeError(f"unexpected torch.randn_like({tuple(like.shape)}, {like.dtype}) in the official code")
        calls.append(1)
        return z.clone()

    torch.randn_like = fake
    try:
        yield
    finally:
        torch.randn_like = original
    if not calls:
        raise RuntimeError("the official code drew no torch.randn_like: this check no longer matches it")


def compare_rate(official: torch.nn.Module, ours: torch.nn.Module, sr: int, seconds: float, seed: int,
                 steps: int) -> dict[str, dict[str, float]]:
    noisy, clean = seeded_pair(sr, seconds, seed)
    lengths = torch.full((noisy.shape[0],), noisy.shape[1], dtype=torch.long)
    rows = {}

    def row(name: str, mine: torch.Tensor, theirs: torch.Tensor) -> None:
        rows[name] = {"max_abs_diff": float((mine - theirs).abs().max()), "scale": float(theirs.abs().max())}

    with torch.no_grad():
        y = official.speech_to_feature(noisy, sr, lengths)  # (B, 1, F, T) complex
        row("encode", ours.encode(noisy, sr), y[:, 0])
        gen = torch.Generator().manual_seed(seed)
        t = torch.rand(noisy.shape[0], generator=gen) * 0.9 + 0.05
        xt = y + torch.randn(y.shape, generator=gen, dtype=y.dtype) * 0.3
        row("field", ours.vector_field(xt[:, 0], t, y[:, 0]), official(xt, t, y)[:, 0])

        # the same draws of t and z for both: ours from its generator; the official's t from the global generator
        # seeded alike, its z (torch.randn_like of a strided view, a different order of the same stream) replaced
        gen = torch.Generator().manual_seed(seed)
        torch.rand(noisy.shape[0], generator=gen)
        z = torch.randn(y[:, 0].shape, generator=gen, dtype=y.dtype)[:, None]
        torch.manual_seed(seed)
        with _randn_like_returns(z):
            theirs_loss = official.forward_step((clean[:, None], noisy[:, None], sr, lengths))
        mine_loss = ours.training_loss(noisy, clean, sr, generator=torch.Generator().manual_seed(seed))
        row("loss", mine_loss, theirs_loss)

        from baseline_code.sampling import get_white_box_solver

        prior = torch.randn(y[:, 0].shape, generator=torch.Generator().manual_seed(ours.opts.sampler_seed),
                            dtype=y.dtype)[:, None]  # our sampler's draw, given to the official prior too
        with _randn_like_returns(prior):
            sampler = get_white_box_solver("euler", official.ode, official, y, T_rev=official.T_rev,
                                           t_eps=official.t_eps, N=steps)
            theirs_wav = official.feature_to_speech(sampler()[0], sr, lengths)
        row("enhance", ours(noisy, sr), theirs_wav)
        rows["enhance"] |= {"official_abs_sum": [round(float(v), 5) for v in theirs_wav.abs().sum(-1)],
                            "official_samples": [round(float(v), 7) for v in theirs_wav[0, 100:104]],
                            "official_loss": round(float(theirs_loss), 6)}
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--espnet-site", required=True, help="folder(s), ':'-separated, of the official interpreter's "
                    "packages (espnet2, pytorch_lightning, torch_ema)")
    ap.add_argument("--checkout", type=Path, default=Path("third_party/urgent2026_challenge_track1"),
                    help="a checkout of urgent-challenge/urgent2026_challenge_track1")
    ap.add_argument("--channels", type=int, default=384, help="bsrnn_hidden / num_channels (official: 384)")
    ap.add_argument("--layers", type=int, default=6, help="num_layer / num_layers (official: 6)")
    ap.add_argument("--decoder-channels", type=int, default=16, help="the gradient decoder's sub_channel (16)")
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=5, help="Euler steps of the sampler (official inference: 15)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the inputs and of the loss's and prior's draws")
    ap.add_argument("--tolerance", type=float, default=1e-4,
                    help="largest difference accepted, relative to the official value's largest magnitude")
    ap.add_argument("--ours-seed", type=int, default=None,
                    help="copy this project's seeded model into the official network instead (the other "
                         "direction), and print the official figures that tests/training/test_flowse.py pins")
    args = ap.parse_args(argv)
    stand_in = add_espnet_site(args.espnet_site)
    from curator.training.models import build_model

    torch.set_num_threads(2)
    torch.manual_seed(0)
    if not (args.checkout / "conf/models/BSRNN_flowse.yaml").is_file():
        raise SystemExit(f"no official checkout at {args.checkout} (conf/models/BSRNN_flowse.yaml is missing): fetch "
                         "urgent-challenge/urgent2026_challenge_track1 as third_party/README.md section 1 says")
    cfg = official_cfg(args.checkout.resolve(), args.channels, args.layers)
    official = official_model(args.checkout.resolve(), cfg)
    if official.dnn.grad_decoder.sub_channel != args.decoder_channels:
        raise SystemExit(f"the official gradient decoder has sub_channel {official.dnn.grad_decoder.sub_channel}, "
                         f"not --decoder-channels {args.decoder_channels}")
    flow = {k: getattr(cfg, k) for k in FLOW_KEYS}
    if args.ours_seed is not None:
        ours = seeded_ours(args.channels, args.layers, args.decoder_channels, args.ours_seed, args.steps)
        ours_to_official(ours, official.dnn)
    else:
        ours = build_model("flowse", {"num_channels": args.channels, "num_layers": args.layers,
                                      "decoder_channels": args.decoder_channels, "sampler_steps": args.steps,
                                      "sampler_seed": args.seed, **flow})
        mapped = official_to_ours(official.dnn, ours)
        expected = ours.state_dict()
        if set(mapped) != set(expected) or any(mapped[k].shape != expected[k].shape for k in expected):
            raise SystemExit("the weight mapping does not cover this project's flowse: "
                             f"{sorted(set(expected) ^ set(mapped))[:5]}")
        ours.load_state_dict(mapped)
    differing = {k: (v, getattr(ours.opts, k)) for k, v in flow.items() if getattr(ours.opts, k) != v}
    if differing:
        raise SystemExit(f"flowse's options differ from the official config: {differing}")
    ours.eval()
    seed = args.seed if args.ours_seed is None else args.ours_seed
    rates = {str(sr): compare_rate(official, ours, sr, args.seconds, seed, args.steps) for sr in RATES}
    worst = max(r["max_abs_diff"] / max(r["scale"], 1e-12) for q in rates.values() for r in q.values())
    ema = compare_ema(cfg.ema_decay, 50)
    print(json.dumps({"channels": args.channels, "layers": args.layers, "seconds": args.seconds,
                      "steps": args.steps, "params": sum(p.numel() for p in ours.parameters()),
                      "official_params": sum(p.numel() for p in official.dnn.parameters()),
                      "espnet_torchaudio_stand_in": stand_in, "rates": rates, "ema_max_abs_diff": ema,
                      "max_rel_diff": worst, "tolerance": args.tolerance}, indent=1))
    return 0 if worst <= args.tolerance and ema <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
