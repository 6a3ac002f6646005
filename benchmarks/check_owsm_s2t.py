"""The CAcc model's OWSM v3.1 rebuild against ESPnet's own inference: the same encoder output, the same beam
search result (token ids and score) and the same text from the same model file.

ESPnet is not a dependency of this project, so this check runs against an ESPnet kept apart (the install of
``benchmarks/check_rawnet3.py``'s docstring; ``espnet==202412``)::

    python benchmarks/check_owsm_s2t.py --espnet-site /tmp/espnet-site

Without ``--model`` it writes seeded random weights in ESPnet's download layout
(:func:`curator.evaluation.metrics.owsm_s2t.write_espnet_download`) at the unit test's small size and at a medium
size (80 mels, 25 ms window, 10 ms hop as the official frontend; 4 blocks each side); ``--official-size`` adds the
official size (18 encoder and 18 decoder blocks of 1024, 50,000 tokens: about 1 B parameters). With ``--model DIR``
it uses that download (e.g. the real one). ESPnet runs ``Speech2Text(train_config, model_file, task_sym="<asr>",
beam_size=5, predict_time=False)`` and the official script's call (``maxlenratio = -min(300, int(seconds * 10))``,
the signal padded to 30 s, previous text ``""``), with the language given or, for ``none``, ``Speech2Language``;
this project runs :func:`~curator.evaluation.metrics.owsm_s2t.load_owsm_s2t`. Prints JSON: per model, signal length
and language, the largest absolute difference of the encoder outputs, whether the best hypotheses' token ids are
equal, the difference of their scores, both texts.

Signals over 30 s are decoded long-form; that needs the official script's ``owsm_utils.py``
(``--official-checkout``, a checkout of urgent-challenge/urgent2026_challenge_track1), whose ``owsm_predict``
(``long_form=True``, as ``calculate_wer.py`` calls it over 30 s) gives ESPnet's text, to be equal to ours, timestamps
included; a row says whether ESPnet fell back to the first 30 s. The small and medium test models then get a
timestamp every second (``small_config(time_step=1.0)``): the small default has no ``<29.00>``, so ESPnet's
``decode_long`` would raise and the script fall back on every long signal (``--default-timestamps`` keeps it, to
check that fallback)::

    python benchmarks/check_owsm_s2t.py --espnet-site /tmp/espnet-site --official-checkout third_party/urgent2026_challenge_track1 \\
        --seconds 1.3 35 65 --languages "<eng>" none
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
from curator.evaluation.metrics.owsm_ctc import (
    OwsmCtcConfig,  # noqa: E402
    probe_signal,  # noqa: E402
)
from curator.evaluation.metrics.owsm_s2t import (  # noqa: E402
    BEAM,
    TASK_SYM,
    OwsmS2TConfig,
    load_owsm_s2t,
    max_tokens,
    small_config,
)
from curator.evaluation.metrics.owsm_s2t import write_espnet_download as write  # noqa: E402


def medium_config(time_step: float | None = None) -> OwsmS2TConfig:
    """The official frontend, narrower and shallower."""
    small = small_config(time_step)
    enc = dataclasses.replace(small.encoder, n_mels=80, size=128, heads=4, cgmlp_units=256, cgmlp_kernel=31,
                              num_blocks=4, linear_units=256, merge_kernel=31, cross_attention=(False,) * 4)
    return dataclasses.replace(small, encoder=enc, decoder_heads=4, decoder_units=256, decoder_blocks=4)


def official_config() -> OwsmS2TConfig:
    """espnet/owsm_v3.1_ebf's sizes (its recipe's training config), a made-up token list of its length."""
    small = small_config()
    specials = [t for t in small.token_list if t[0] == "<"]
    pieces = [t for t in small.token_list if t[0] != "<"]
    tokens = (*specials[:-3], *pieces, *(f"▁t{i}" for i in range(50000 - len(small.token_list))), *specials[-3:])
    enc = OwsmCtcConfig(token_list=tokens, n_mels=80, num_blocks=18, interctc_layers=(), interctc_conditioning=False,
                        cross_attention=(False,) * 18)
    return OwsmS2TConfig(encoder=enc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--espnet-site", required=True,
                    help="folder(s), ':'-separated, where espnet==202412 and its imports are installed")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="an ESPnet OWSM v3.1 download to check (repeatable); default: seeded random weights")
    ap.add_argument("--official-size", action="store_true", help="also the official size (slow)")
    ap.add_argument("--seconds", type=float, nargs="+", default=[0.05, 0.3, 1.3, 4.0],
                    help="signal lengths in seconds (under 0.1 s: end detection; over 30 s: long-form, which needs "
                         "--official-checkout)")
    ap.add_argument("--languages", nargs="+", default=["<eng>", "none"],
                    help="language tokens to decode with; none: identified as the official script does")
    ap.add_argument("--seed", type=int, default=0, help="weights and signals")
    ap.add_argument("--official-checkout", type=Path, default=None,
                    help="checkout of urgent2026_challenge_track1: its owsm_utils.owsm_predict decodes signals over "
                         "30 s long-form on the ESPnet side (needs librosa)")
    ap.add_argument("--default-timestamps", action="store_true",
                    help="keep the test models' three timestamps (no <29.00>) for long signals: ESPnet falls back")
    args = ap.parse_args()
    long_form = any(s > 30 for s in args.seconds)
    if long_form and args.official_checkout is None:
        ap.error("lengths over 30 s are decoded long-form: give --official-checkout")
    owsm_predict = None
    if long_form:
        sys.path.insert(0, str(args.official_checkout / "evaluation_metrics"))
        from owsm_utils import owsm_predict  # the official script's call

    stand_in = add_espnet_site(args.espnet_site)
    with contextlib.redirect_stdout(sys.stderr):  # ESPnet prints as it imports and builds: stdout is the JSON
        from espnet2.bin.s2t_inference import Speech2Text
        from espnet2.bin.s2t_inference_language import Speech2Language

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        step = 1.0 if long_form and not args.default_timestamps else None  # timestamps up to <30.00> with <29.00> among them
        configs = {"small": small_config(step), "medium": medium_config(step)}
        if args.official_size:
            configs["official"] = official_config()
        models = args.model or [write(Path(tmp) / name, cfg, args.seed) for name, cfg in configs.items()]
        out = {"espnet_torchaudio_stand_in": stand_in, "models": {}}
        for folder in models:
            ours = load_owsm_s2t(folder)
            # the config names the statistics file and the sentencepiece model relative to the download, as ESPnet's
            # recipes leave them, and ESPnet reads the latter at its first call
            stack = contextlib.ExitStack()
            stack.enter_context(contextlib.chdir(folder))
            with contextlib.redirect_stdout(sys.stderr):
                theirs = Speech2Text(s2t_train_config=ours.source_config, s2t_model_file=ours.source_model,
                                     task_sym=TASK_SYM, beam_size=BEAM, predict_time=False)
                detector = Speech2Language(s2t_train_config=ours.source_config, s2t_model_file=ours.source_model,
                                           nbest=1)
            rows = {}
            for s in args.seconds:
                x = probe_signal(s, args.seed).astype(np.float64)
                padded = np.pad(x, (0, max(0, ours.model.speech_samples - len(x))))[:ours.model.speech_samples]
                with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
                    wav = torch.from_numpy(padded.astype(np.float32))[None]
                    enc_theirs, _ = theirs.s2t_model.encode(wav, torch.tensor([wav.size(1)]))
                with torch.inference_mode():
                    enc_ours = ours.model.encode(torch.from_numpy(x.astype(np.float32))[None])
                for lang in args.languages:
                    if len(x) > ours.model.speech_samples:
                        rows[f"{s}s {lang}"] = _long_form(theirs, detector, owsm_predict, ours, x, padded, lang)
                        continue
                    with torch.no_grad(), contextlib.redirect_stdout(sys.stderr):
                        lang_sym = detector(padded)[0][0] if lang == "none" else lang
                        theirs.maxlenratio = -min(300, int((len(x) / 16000) * 10))
                        best = theirs(padded, "", lang_sym=lang_sym, task_sym=TASK_SYM)[0]
                    text_ours = ours.transcribe(x, None if lang == "none" else lang.strip("<>"))
                    with torch.inference_mode():
                        lang_ours = ours.model.detect_language(enc_ours) if lang == "none" else lang
                        yseq, score = ours.model.decode(enc_ours, ours.model.primer(lang_ours), max_tokens(len(x)))
                    rows[f"{s}s {lang}"] = {
                        "encoder_max_abs_diff": float((enc_theirs - enc_ours).abs().max()),
                        "frames": int(enc_ours.shape[1]), "language_equal": lang_sym == lang_ours,
                        "tokens_equal": best[-1].yseq.tolist() == yseq, "n_tokens": len(yseq),
                        "score_diff": abs(float(best[-1].score) - score), "espnet_score": float(best[-1].score),
                        "text_equal": best[-2] == text_ours, "espnet_text": best[-2], "our_text": text_ours}
            stack.close()
            out["models"][folder.name if not args.model else str(folder)] = rows
    print(json.dumps(out, indent=1, ensure_ascii=False))


def _long_form(theirs, detector, owsm_predict, ours, x, padded, lang) -> dict:  # noqa: ANN001
    """ESPnet through the official ``owsm_predict`` (long-form) against ours, for a signal over 30 s. The
    official call identifies a ``none`` language with a ``Speech2Language`` it downloads; here the one of the same
    model file does it, on the first 30 s as the script does."""
    import io

    with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()) as said:
        lang_sym = detector(padded)[0][0] if lang == "none" else lang
        text = owsm_predict(theirs, x, 16000, src_lang=lang_sym.strip("<>"), beam_size=BEAM, long_form=True)
    ours_text = ours.transcribe(x, None if lang == "none" else lang.strip("<>"))
    return {"long_form": True, "espnet_fell_back": "Fall back" in said.getvalue(), "language": lang_sym,
            "text_equal": text == ours_text, "espnet_text": text, "our_text": ours_text}


if __name__ == "__main__":
    main()
