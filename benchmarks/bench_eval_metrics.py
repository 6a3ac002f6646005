"""Times-realtime of every available evaluation metric, per utterance and batched, printed as JSON.

Usage: ``python benchmarks/bench_eval_metrics.py [--seconds 4] [--sr 16000] [--utts 8] [--threads 1]
[--batch-size 8] [--device cpu|cuda] [--weights name=path ...]``.
Input: speech-like references with white noise at 5 dB SNR as estimates, lengths spread from 0.5x to 1.5x
``--seconds`` (so batches pad or crop as on real data). Each metric runs once on two utterances first (model
loading, numba compilation), then is timed on ``--utts`` utterances, in-process (no process pool): ``x_realtime``
one utterance per forward pass (the eval stage on CPU), and for metrics with a batched path
(``MetricResources.batched``) ``batched_x_realtime`` with ``--batch-size`` utterances per pass (``batch_on_cpu`` on
CPU; on cuda that is what the eval stage runs) and ``batched_max_abs_diff``, its largest difference from the
per-utterance values. Unavailable metrics are listed with their reason.

``--random-models DIR`` saves randomly initialised models of the official architectures (HuBERT base as
mHuBERT-147 for SpeechBERTScore; wav2vec2 large-lv60 with a 392-symbol CTC head as the espeak phoneme recogniser
for LPS; RawNet3 at espnet/voxcelebs12_rawnet3's size in ESPnet's download layout for SpkSim, in place of the
d-vector; with ``lid_acc`` among ``--metrics``, OWSM-CTC at espnet/owsm_ctc_v4_1B's size, about 1 B parameters
and a 3.8 GB file, for LID accuracy; with ``cacc``, OWSM v3.1 at espnet/owsm_v3.1_ebf's size, about 1 B parameters,
for CAcc) to DIR and times those metrics on them: the speed is the real models', the values are meaningless (and
CAcc's beam search takes as many steps as the random decoder's hypotheses run, up to 10 tokens a second). Metrics that read labels get one: every row's language ``en`` and a transcript.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def random_models(folder: Path, metrics: list[str] | None = None) -> dict[str, str]:
    """Official-size models with random weights (timing only), saved as the metrics' loaders read them; the
    large OWSM-CTC only where ``metrics`` names ``lid_acc``, and OWSM v3.1 only where it names ``cacc``."""
    from curator.scoring._compat import guard_torchaudio

    guard_torchaudio()
    import transformers

    transformers.set_seed(0)
    sbs, lps = folder / "hubert_base", folder / "wav2vec2_large_lv60_ctc"
    if not sbs.is_dir():
        transformers.HubertModel(transformers.HubertConfig()).save_pretrained(sbs)
    if not lps.is_dir():
        vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3} | {f"p{i}": i + 4 for i in range(388)}
        lps.mkdir(parents=True)
        (lps / "vocab.json").write_text(json.dumps(vocab))
        tokenizer = transformers.Wav2Vec2CTCTokenizer(str(lps / "vocab.json"))
        extractor = transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=True)
        transformers.Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(lps)
        config = transformers.Wav2Vec2Config(
            vocab_size=len(vocab), hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
            intermediate_size=4096, feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
            pad_token_id=0)
        transformers.Wav2Vec2ForCTC(config).save_pretrained(lps)
    rawnet3 = folder / "voxcelebs12_rawnet3"
    if not rawnet3.is_dir():
        from curator.evaluation.metrics.rawnet3 import RawNet3Config, write_espnet_download

        write_espnet_download(rawnet3, RawNet3Config(), seed=0)
    out = {"speech_bert_score": str(sbs), "lps": str(lps), "spk_sim": str(rawnet3)}
    if metrics and "lid_acc" in metrics:
        owsm = folder / "owsm_ctc_v4_1B"
        if not owsm.is_dir():
            from check_owsm_ctc import official_config
            from curator.evaluation.metrics.owsm_ctc import write_espnet_download as write_owsm

            write_owsm(owsm, official_config(), seed=0)
        out["lid_acc"] = str(owsm)
    if metrics and "cacc" in metrics:
        owsm = folder / "owsm_v3.1_ebf"
        if not owsm.is_dir():
            from check_owsm_s2t import official_config as official_s2t
            from curator.evaluation.metrics.owsm_s2t import write_espnet_download as write_s2t

            write_s2t(owsm, official_s2t(), seed=0)
        out["cacc"] = str(owsm)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--sr", type=int, default=16000)
    ap.add_argument("--utts", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--weights", nargs="*", default=[], help="name=path of path-loaded metrics' weights")
    ap.add_argument("--random-models", type=Path, default=None, help="folder for random official-size models (SSL, RawNet3; OWSM-CTC for lid_acc, OWSM v3.1 for cacc)")
    ap.add_argument("--metrics", nargs="*", default=None, help="names (default: every registered metric)")
    args = ap.parse_args(argv)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(Path(__file__).parent))
    from compare_official_metrics import degrade, speechlike
    from curator.evaluation.metrics import METRICS, MetricOptions, compute_metrics, split_available

    weights = dict(w.split("=", 1) for w in args.weights)
    randomised = random_models(args.random_models, args.metrics) if args.random_models is not None else {}
    weights |= randomised
    single = MetricOptions(device=args.device, batch_size=1, weights=weights)
    batched = MetricOptions(device=args.device, batch_size=args.batch_size, weights=weights, batch_on_cpu=True)
    rng = np.random.default_rng(0)
    lengths = np.linspace(0.5, 1.5, args.utts) * args.seconds
    refs = [speechlike(args.sr, s, rng) for s in lengths]
    ests = [degrade(r, args.sr, "noise_5", rng) for r in refs]
    srs = np.full(args.utts, args.sr)
    labels = [{"language": "en", "text": "the quick brown fox"}] * args.utts
    audio = float(lengths.sum())
    metrics, unavailable = split_available([METRICS.get(m) for m in (args.metrics or METRICS.names())], single)

    def timed(m, options: MetricOptions) -> tuple[float, np.ndarray]:
        compute_metrics([m], ests[:2], refs[:2], srs[:2], pool=None, options=options,
                        labels=labels[:2])  # warm-up: load, compile
        if args.device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        values = compute_metrics([m], ests, refs, srs, pool=None, options=options, labels=labels)[m.name]
        if args.device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t, values

    results = {}
    for m in metrics:
        elapsed, values = timed(m, single)
        row = {"x_realtime": round(audio / elapsed, 2), "seconds_per_audio_second": round(elapsed / audio, 5)}
        if m.resources.batched:
            b_elapsed, b_values = timed(m, batched)
            row |= {"batched_x_realtime": round(audio / b_elapsed, 2),
                    "batched_speedup": round(elapsed / b_elapsed, 2),
                    "batched_max_abs_diff": float(np.nanmax(np.abs(b_values - values)))}
        results[m.name] = row
    print(json.dumps({"conditions": {"audio_seconds_per_utt": args.seconds, "audio_seconds": round(audio, 2),
                                     "sr": args.sr, "utts": args.utts, "threads": args.threads,
                                     "batch_size": args.batch_size, "device": args.device,
                                     "random_init_models": sorted(randomised),
                                     "cpu_count": os.cpu_count()},
                      "metrics": results, "unavailable": unavailable}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
