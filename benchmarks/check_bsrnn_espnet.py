"""``bsrnn`` at its defaults against the official baseline's network: ESPnet's ``BSRNNSeparator`` with its weights.

The official baseline builds its model from ESPnet classes (``STFTEncoder``/``STFTDecoder`` of 960/480 samples at
48 kHz, scaled to each rate, and ``BSRNNSeparator(input_dim=481, num_channels=196, num_layers=6, target_fs=48000,
causal=False)``). This check builds that network with ESPnet's own initialisation (its norms' affine weights
drawn at random too, so that a wrong mapping of them shows), copies every weight into this project's ``bsrnn``
(the per-band norms, 1x1 convolutions and mask/residual MLPs stacked into our width groups, the LSTMs and
projections as they are) and runs both on the same noise at each of the seven URGENT rates. ESPnet is not a
dependency of this project; the check runs against an ESPnet kept apart (``espnet==202412``, as the official
evaluation pins), e.g. the official interpreter's site of ``third_party/README.md``::

    python benchmarks/check_bsrnn_espnet.py --espnet-site /tmp/official-venv/lib/python3.11/site-packages

Prints JSON: per rate the largest absolute difference of the two outputs and the output's RMS; exits 1 when a
difference exceeds ``--tolerance``. ``--ours-seed N`` goes the other way: this project's seeded model (norm
affines drawn too) copied into ESPnet's network, with ESPnet's output figures that
``tests/training/test_official_recipe.py`` pins, so CI checks the equivalence without ESPnet. Measured (session 24,
CPU, 0.5 s of band-limited noise, :func:`seeded_noise`): at the official size 3e-8 to 5e-8 against an RMS of
0.012-0.019, i.e. float32 rounding. Session 23 measured 5e-7 to 1.1e-6 on full-band noise, when this project's
band norms still floored the variance at 1e-5 instead of ESPnet's 1e-8; loud bands hid that difference, which
``check_flowse_official.py`` found. (With weights far larger than any initialisation,
e.g. standard deviation 0.3 into the 784-wide layers, the recurrences become chaotic and rounding differences
grow along time; that says nothing about the architecture.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _espnet_site import add_espnet_site, randomise_group_norms  # noqa: E402  (this script's folder)

RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
NORM_AFFINE_STD = 0.2
"""Spread of the random affine weights given to ESPnet's norms (their init is 1 and 0, which hides a mix-up)."""


def espnet_network(channels: int, layers: int) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module]:
    try:
        from espnet2.enh.decoder.stft_decoder import STFTDecoder
        from espnet2.enh.encoder.stft_encoder import STFTEncoder
        from espnet2.enh.separator.bsrnn_separator import BSRNNSeparator
    except ImportError as exc:
        raise SystemExit(f"espnet2 is not importable from --espnet-site ({exc}); install espnet==202412 there "
                         "(third_party/README.md, section 2)") from exc

    enc = STFTEncoder(n_fft=960, hop_length=480, use_builtin_complex=True, default_fs=48000)
    dec = STFTDecoder(n_fft=960, hop_length=480, default_fs=48000)
    sep = BSRNNSeparator(input_dim=481, num_spk=1, num_channels=channels, num_layers=layers, target_fs=48000,
                         causal=False)
    randomise_group_norms(sep, NORM_AFFINE_STD)
    return enc, sep, dec


def espnet_to_ours(sep: torch.nn.Module, ours: torch.nn.Module) -> dict[str, torch.Tensor]:
    """ESPnet's BSRNN weights under this project's names and shapes: ``curator.training.official_weights``, the
    mapping ``curator import-official`` and ``train.init_from`` use (the separator keeps the net under ``bsrnn.``)."""
    from curator.training.official_weights import official_to_ours

    return official_to_ours(sep.state_dict(), ours, "bsrnn", prefix="bsrnn.")


def ours_to_espnet(ours: torch.nn.Module, sep: torch.nn.Module) -> None:
    """The inverse of :func:`espnet_to_ours`: this project's weights copied into ESPnet's network (every one)."""
    from curator.training.official_weights import ours_to_official

    sep.load_state_dict(ours_to_official(ours.state_dict(), ours, "bsrnn", prefix="bsrnn."), strict=True)


def seeded_ours(channels: int, layers: int, seed: int) -> torch.nn.Module:
    """This project's ``bsrnn`` from its own seeded initialisation, every norm's affine weights drawn too (the
    model ``tests/training/test_official_recipe.py`` checks against the figures ``--ours-seed`` prints)."""
    from curator.training.models import build_model

    torch.manual_seed(seed)
    model = build_model("bsrnn", {"num_channels": channels, "num_layers": layers})
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(torch.randn_like(p) * NORM_AFFINE_STD + (1.0 if name.endswith(("weight", "gamma")) else 0.0))
    return model.eval()


def seeded_noise(sr: int, seconds: float, seed: int) -> torch.Tensor:
    """Two examples at ``sr`` from their own generator (the same in the test and here): noise of standard deviation
    0.1 low-passed to a quarter of the rate, plus white noise of 1e-5. The upper bands are then nearly empty, as
    in upsampled narrow-band speech, so a norm's variance floor (``band_norm_eps``) shows in the output."""
    g = torch.Generator().manual_seed(seed + sr)
    n = int(sr * seconds)
    spec = torch.fft.rfft(torch.randn(2, n, generator=g) * 0.1)
    spec[:, spec.shape[-1] // 2:] = 0
    return torch.fft.irfft(spec, n) + torch.randn(2, n, generator=g) * 1e-5


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--espnet-site", required=True, help="folder(s), ':'-separated, where espnet2 is importable")
    ap.add_argument("--channels", type=int, default=196, help="num_channels (official: 196)")
    ap.add_argument("--layers", type=int, default=6, help="num_layers (official: 6)")
    ap.add_argument("--seconds", type=float, default=0.5)
    ap.add_argument("--tolerance", type=float, default=1e-4, help="largest absolute difference accepted")
    ap.add_argument("--ours-seed", type=int, default=None,
                    help="copy this project's seeded model into ESPnet's network instead (the other direction), "
                         "and print ESPnet's output figures that tests/training/test_official_recipe.py pins")
    args = ap.parse_args(argv)
    stand_in = add_espnet_site(args.espnet_site)
    from curator.training.models import build_model

    torch.manual_seed(0)
    torch.set_num_threads(2)
    enc, sep, dec = espnet_network(args.channels, args.layers)
    if args.ours_seed is not None:
        ours = seeded_ours(args.channels, args.layers, args.ours_seed)
        ours_to_espnet(ours, sep)
    else:
        ours = build_model("bsrnn", {"num_channels": args.channels, "num_layers": args.layers})
        mapped = espnet_to_ours(sep, ours)
        expected = ours.state_dict()
        if set(mapped) != set(expected) or any(mapped[k].shape != expected[k].shape for k in expected):
            raise SystemExit("the weight mapping does not cover this project's bsrnn: "
                             f"{sorted(set(expected) ^ set(mapped))[:5]}")
        ours.load_state_dict(mapped)
    ours.eval()
    sep.eval()
    rows = {}
    for sr in RATES:
        x = seeded_noise(sr, args.seconds, 0 if args.ours_seed is None else args.ours_seed)
        lengths = torch.full((2,), x.shape[1], dtype=torch.long)
        with torch.no_grad():
            spec, flens = enc(x, lengths, fs=sr)
            est, _, _ = sep(spec, flens, {"fs": sr})
            theirs = dec(est[0], lengths, fs=sr)[0]
            mine = ours(x, sr)
        rows[str(sr)] = {"max_abs_diff": float((mine - theirs).abs().max()),
                         "rms": float(theirs.square().mean().sqrt())}
        if args.ours_seed is not None:  # ESPnet's output, for the test that has no ESPnet
            rows[str(sr)] |= {"espnet_abs_sum": [round(float(v), 6) for v in theirs.abs().sum(-1)],
                              "espnet_samples": [round(float(v), 7) for v in theirs[0, 100:104]]}
    worst = max(r["max_abs_diff"] for r in rows.values())
    print(json.dumps({"channels": args.channels, "layers": args.layers, "seconds": args.seconds,
                      "params": sum(p.numel() for p in ours.parameters()), "espnet_torchaudio_stand_in": stand_in,
                      "rates": rows, "max_abs_diff": worst, "tolerance": args.tolerance}, indent=1))
    return 0 if worst <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
