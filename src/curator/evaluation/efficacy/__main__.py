"""Entry point of the efficacy matrix. A ``select`` cell is data (a curated list, pairs simulated from selected
sources): its numeric environment is pinned before numpy or faiss load, as in the select stage, so the list is the
same on every x86_64 machine (see curator.determinism). Training and evaluation cells keep the libraries' own
kernels: training is not bit-reproducible across CPUs anyway (README, "Reproducibility")."""

import sys

if sys.argv[1:2] == ["select"]:
    from curator.determinism import configure_environment

    configure_environment(threads=None)

from curator.evaluation.efficacy.cli import main  # noqa: E402  (after the environment is pinned)

sys.exit(main())
