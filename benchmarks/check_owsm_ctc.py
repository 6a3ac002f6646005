"""The LID model's OWSM-CTC rebuild against ESPnet's own inference: the same encoder output and the same greedy
tokens from the same model file.

ESPnet is not a dependency of this project, so this check runs against an ESPnet kept apart (the install of
``benchmarks/check_rawnet3.py``'s docstring; ``espnet==202412`` has the OWSM-CTC classes)::

    python benchmarks/check_owsm_ctc.py --espnet-site /tmp/espnet-site

Without ``--model`` it writes seeded random weights in ESPnet's download layout
(:func:`curator.evaluation.metrics.owsm_ctc.write_espnet_download`) at the unit test's small size, the same with
per-utterance mean and variance normalisation, and at a medium size (the official frontend: 128 mels, 25 ms
window, 10 ms hop); ``--official-size`` adds the official size (27
blocks of 1024, 50,000 tokens: about 1 B parameters and 10 GB of memory for both copies). With ``--model DIR`` it
uses that download (e.g. the real one). ESPnet runs ``Speech2TextGreedySearch(train_config, model_file,
lang_sym="<nolang>", task_sym="<asr>")``, the call of the official LID script, with the ``<na>`` prompt as token ids
(the test configs have no BPE model to tokenise it; the real one tokenises it to that id); this project runs
:func:`~curator.evaluation.metrics.owsm_ctc.load_owsm_ctc`. Prints JSON: per model and signal length, the largest
absolute difference of the encoder outputs, whether the greedy tokens are equal, and ESPnet's first tokens.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _espnet_site import add_espnet_site  # noqa: E402  (this script's folder)
from curator.evaluation.metrics.owsm_ctc import (  # noqa: E402
    LANG_SYM,
    TASK_SYM,
    OwsmCtcConfig,
    load_owsm_ctc,
    locate,
    min_samples,
    probe_signal,
    small_config,
)
from curator.evaluation.metrics.owsm_ctc import write_espnet_download as write  # noqa: E402

SR = 16000


def medium_config() -> OwsmCtcConfig:
    """The official frontend and block structure, narrower and shallower."""
    small = small_config()
    return dataclasses.replace(small, n_mels=128, size=128, heads=4, cgmlp_units=256, cgmlp_kernel=31,
                               num_blocks=6, linear_units=256, merge_kernel=31, interctc_layers=(2, 4, 5),
                               cross_attention=(False, False, True, False, False, True), prompt_size=64,
                               prompt_heads=4, prompt_units=128, prompt_blocks=2)


def official_config() -> OwsmCtcConfig:
    """espnet/owsm_ctc_v4_1B's sizes (its training config in ESPnet's egs2/owsm_ctc_v4), a made-up token list of
    its length."""
    small = small_config()
    tokens = (*small.token_list, *(f"▁t{i}" for i in range(50000 - len(small.token_list))))
    return OwsmCtcConfig(token_list=tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--espnet-site", required=True,
                    help="folder(s), ':'-separated, where espnet==202412 and its imports are installed")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="an ESPnet OWSM-CTC download to check (repeatable); default: seeded random weights")
    ap.add_argument("--official-size", action="store_true", help="also the official size (slow, ~10 GB)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[0.1, 0.2, 1.3, 4.0, 52.0],
                    help="signal lengths in seconds (the official LID script passes the whole signal, whatever "
                         "its length; 0.1 s is too short for the subsampling on both sides)")
    ap.add_argument("--seed", type=int, default=0, help="weights and signals")
    args = ap.parse_args()

    stand_in = add_espnet_site(args.espnet_site)
    with contextlib.redirect_stdout(sys.stderr):  # ESPnet prints as it imports and builds: stdout is the JSON
        from espnet2.bin.s2t_inference_ctc import Speech2TextGreedySearch

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        configs = {"small": small_config(), "medium": medium_config(),
                   "small_utterance_mvn": dataclasses.replace(small_config(), normalize="utterance_mvn",
                                                              norm_vars=True)}
        if args.official_size:
            configs["official"] = official_config()
        models = args.model or [write(Path(tmp) / name, cfg, args.seed) for name, cfg in configs.items()]
        signals = [probe_signal(s, args.seed) for s in args.seconds]
        out = {"espnet_torchaudio_stand_in": stand_in, "models": {}}
        for folder in models:
            cfg_path, model_path = locate(folder)
            # the config names the statistics file relative to the download, as ESPnet's recipes leave it
            with contextlib.redirect_stdout(sys.stderr), contextlib.chdir(folder):
                theirs = Speech2TextGreedySearch(s2t_train_config=cfg_path, s2t_model_file=model_path,
                                                 lang_sym=LANG_SYM, task_sym=TASK_SYM)
            ours = load_owsm_ctc(folder)
            na = np.array([theirs.s2t_model.na])
            rows = {}
            for s, x in zip(args.seconds, signals, strict=True):
                wav = torch.from_numpy(x)[None]
                batch = {"speech": wav, "speech_lengths": torch.tensor([wav.size(1)]),
                         "text_prev": torch.from_numpy(na)[None], "text_prev_lengths": torch.tensor([1]),
                         "prefix": torch.tensor([[ours.token_id[LANG_SYM], ours.token_id[TASK_SYM]]]),
                         "prefix_lengths": torch.tensor([2])}
                try:
                    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
                        enc_theirs, _ = theirs.s2t_model.encode(**batch)
                        tokens_theirs = theirs(x, text_prev=na)[0][1]
                except Exception as exc:  # noqa: BLE001 - ESPnet refuses too-short input; so does ours
                    rows[f"{s}s"] = {"espnet_error": type(exc).__name__,
                                     "ours_refuses": len(x) < min_samples(ours.cfg)}
                    continue
                if isinstance(enc_theirs, tuple):
                    enc_theirs = enc_theirs[0]
                with torch.inference_mode():
                    enc_ours = ours.encode(wav)
                    tokens_ours = ours.greedy(wav)
                rows[f"{s}s"] = {"max_abs_diff": float((enc_theirs - enc_ours).abs().max()),
                                 "max_abs": float(enc_theirs.abs().max()), "frames": int(enc_ours.shape[1]),
                                 "tokens_equal": tokens_theirs == tokens_ours, "n_tokens": len(tokens_ours),
                                 "espnet_first_tokens": tokens_theirs[:6],
                                 "espnet_first_values": [round(float(v), 6) for v in enc_theirs[0, -1, :8]]}
            out["models"][folder.name if not args.model else str(folder)] = rows
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
