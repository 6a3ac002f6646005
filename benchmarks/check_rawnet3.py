"""SpkSim's RawNet3 rebuild against ESPnet's own inference: the same embeddings from the same model file.

ESPnet is not a dependency of this project, so this check runs against an ESPnet kept apart, the version the
official URGENT 2026 evaluation pins (``espnet==202412``)::

    pip download --no-deps espnet==202412 -d /tmp/esp
    pip install --no-deps --target /tmp/espnet-site /tmp/esp/espnet-202412-*.whl asteroid-filterbanks==0.4.0 \\
        typeguard humanfriendly configargparse torch_complex h5py kaldiio g2p_en nltk jamo sentencepiece \\
        espnet_tts_frontend unidecode jaconv
    python benchmarks/check_rawnet3.py --espnet-site /tmp/espnet-site

Without ``--model`` it writes seeded random weights at the official size (RawNet3 1024/1536 channels, 192-d, as
espnet/voxcelebs12_rawnet3) and at a small size in ESPnet's download layout
(:func:`curator.evaluation.metrics.rawnet3.write_espnet_download`); with ``--model DIR`` it uses that download
(e.g. the real one). ESPnet embeds with ``Speech2Embedding(train_config, model_file)``, the class the official
script calls; this project with :func:`~curator.evaluation.metrics.rawnet3.load_rawnet3`. Prints JSON: per model
and signal length, the largest absolute difference of the embeddings and their cosine. ESPnet imports torchaudio
at module level, for modules RawNet3 does not use; where the installed torchaudio cannot load, an empty stand-in
module takes its place and the JSON says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _espnet_site import add_espnet_site  # noqa: E402  (this script's folder)
from curator.evaluation.metrics.rawnet3 import (  # noqa: E402
    RawNet3Config,
    embed,
    load_rawnet3,
    locate,
    write_espnet_download,
)

SR = 16000
SMALL = RawNet3Config(sinc_filters=16, sinc_kernel_size=31, sinc_stride=8, model_scale=4, ndim=32, output_size=48,
                      embedding_size=12)
"""The size the unit test writes (tests/evaluation/test_metric_models.py)."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--espnet-site", required=True,
                    help="folder(s), ':'-separated, where espnet==202412 and its imports are installed")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="an ESPnet RawNet3 download to check (repeatable); default: seeded random weights at the "
                         "official and the unit test's size")
    ap.add_argument("--seconds", type=float, nargs="+", default=[0.25, 1.3, 4.0], help="signal lengths")
    ap.add_argument("--seed", type=int, default=0, help="weights and signals")
    args = ap.parse_args()

    stand_in = add_espnet_site(args.espnet_site)
    with contextlib.redirect_stdout(sys.stderr):  # ESPnet prints as it imports and builds: stdout is the JSON
        from espnet2.bin.spk_inference import Speech2Embedding

    with tempfile.TemporaryDirectory() as tmp:
        models = args.model or [write_espnet_download(Path(tmp) / "official", RawNet3Config(), args.seed),
                                write_espnet_download(Path(tmp) / "small", SMALL, args.seed)]
        rng = np.random.default_rng(args.seed)
        signals = [(0.1 * rng.standard_normal(int(s * SR))).astype(np.float32) for s in args.seconds]
        out = {"espnet_torchaudio_stand_in": stand_in, "models": {}}
        for folder in models:
            cfg_path, model_path = locate(folder)
            with contextlib.redirect_stdout(sys.stderr):
                theirs = Speech2Embedding(train_config=cfg_path, model_file=model_path)
            ours = load_rawnet3(folder)
            rows = {}
            for s, x in zip(args.seconds, signals, strict=True):
                a = theirs(x)[0].numpy()
                b = embed(ours, x)
                rows[f"{s}s"] = {"max_abs_diff": float(np.abs(a - b).max()), "max_abs": float(np.abs(a).max()),
                                 "cosine": float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)),
                                 "espnet_first_values": [round(float(v), 6) for v in a[:12]]}
            out["models"][folder.name if not args.model else str(folder)] = rows
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
