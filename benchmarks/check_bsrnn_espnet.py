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


def espnet_to_ours(sep: torch.nn.Module, ours: torch.nn.Module, layers: int) -> dict[str, torch.Tensor]:
    """ESPnet's BSRNN weights under this project's names and shapes."""
    b = sep.bsrnn
    sd: dict[str, torch.Tensor] = {}

    def stack(tensors: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack([t.detach() for t in tensors])

    for gi, g in enumerate(ours.band_split.groups):
        idx, key = g.band_list, f"band_split.groups.{gi}"
        sd[f"{key}.in_norm.gamma"] = stack([b.band_split.norm[i].weight for i in idx])
        sd[f"{key}.in_norm.beta"] = stack([b.band_split.norm[i].bias for i in idx])
        sd[f"{key}.in_proj.weight"] = stack([b.band_split.fc[i].weight[:, :, 0].T for i in idx])
        sd[f"{key}.in_proj.bias"] = stack([b.band_split.fc[i].bias for i in idx])
    for i in range(layers):
        for name, norm, rnn, fc in (("time_rnns", b.norm_time, b.rnn_time, b.fc_time),
                                    ("band_rnns", b.norm_freq, b.rnn_freq, b.fc_freq)):
            key = f"rnns.{name}.{i}"
            sd[f"{key}.norm.weight"], sd[f"{key}.norm.bias"] = norm[i].weight.detach(), norm[i].bias.detach()
            sd |= {f"{key}.rnn.{k}": v.detach() for k, v in rnn[i].state_dict().items()}
            sd[f"{key}.proj.weight"], sd[f"{key}.proj.bias"] = fc[i].weight.detach(), fc[i].bias.detach()
    for head, mlps in (("mask", b.mask_decoder.mlp_mask), ("residual", b.mask_decoder.mlp_residual)):
        for gi, g in enumerate(getattr(ours, head).groups):
            idx, key = g.band_list, f"{head}.groups.{gi}"
            sd[f"{key}.out_norm.gamma"] = stack([mlps[i][0].weight for i in idx])
            sd[f"{key}.out_norm.beta"] = stack([mlps[i][0].bias for i in idx])
            sd[f"{key}.out_hidden.weight"] = stack([mlps[i][1].weight[:, :, 0].T for i in idx])
            sd[f"{key}.out_hidden.bias"] = stack([mlps[i][1].bias for i in idx])
            sd[f"{key}.out_proj.weight"] = stack([mlps[i][3].weight[:, :, 0].T for i in idx])
            sd[f"{key}.out_proj.bias"] = stack([mlps[i][3].bias for i in idx])
    return sd


def ours_to_espnet(ours: torch.nn.Module, sep: torch.nn.Module, layers: int) -> None:
    """The inverse of :func:`espnet_to_ours`: this project's weights copied into ESPnet's network, in place."""
    b, sd = sep.bsrnn, ours.state_dict()
    with torch.no_grad():
        for gi, g in enumerate(ours.band_split.groups):
            key = f"band_split.groups.{gi}"
            for j, i in enumerate(g.band_list):
                b.band_split.norm[i].weight.copy_(sd[f"{key}.in_norm.gamma"][j])
                b.band_split.norm[i].bias.copy_(sd[f"{key}.in_norm.beta"][j])
                b.band_split.fc[i].weight.copy_(sd[f"{key}.in_proj.weight"][j].T[:, :, None])
                b.band_split.fc[i].bias.copy_(sd[f"{key}.in_proj.bias"][j])
        for i in range(layers):
            for name, norm, rnn, fc in (("time_rnns", b.norm_time, b.rnn_time, b.fc_time),
                                        ("band_rnns", b.norm_freq, b.rnn_freq, b.fc_freq)):
                key = f"rnns.{name}.{i}"
                norm[i].weight.copy_(sd[f"{key}.norm.weight"])
                norm[i].bias.copy_(sd[f"{key}.norm.bias"])
                rnn[i].load_state_dict({k: sd[f"{key}.rnn.{k}"] for k in rnn[i].state_dict()})
                fc[i].weight.copy_(sd[f"{key}.proj.weight"])
                fc[i].bias.copy_(sd[f"{key}.proj.bias"])
        for head, mlps in (("mask", b.mask_decoder.mlp_mask), ("residual", b.mask_decoder.mlp_residual)):
            for gi, g in enumerate(getattr(ours, head).groups):
                key = f"{head}.groups.{gi}"
                for j, i in enumerate(g.band_list):
                    mlps[i][0].weight.copy_(sd[f"{key}.out_norm.gamma"][j])
                    mlps[i][0].bias.copy_(sd[f"{key}.out_norm.beta"][j])
                    mlps[i][1].weight.copy_(sd[f"{key}.out_hidden.weight"][j].T[:, :, None])
                    mlps[i][1].bias.copy_(sd[f"{key}.out_hidden.bias"][j])
                    mlps[i][3].weight.copy_(sd[f"{key}.out_proj.weight"][j].T[:, :, None])
                    mlps[i][3].bias.copy_(sd[f"{key}.out_proj.bias"][j])


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
        ours_to_espnet(ours, sep, args.layers)
    else:
        ours = build_model("bsrnn", {"num_channels": args.channels, "num_layers": args.layers})
        mapped = espnet_to_ours(sep, ours, args.layers)
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
