"""Entry point of the efficacy matrix. A ``select`` cell is data (a curated list, pairs simulated from selected
sources): ``curator/__init__`` pins its numeric environment before numpy or faiss load, as in the select stage
(:data:`curator.determinism.ENTRY_POINTS`), so the list is the same on every x86_64 machine. Training and
evaluation cells keep the libraries' own kernels: training is not bit-reproducible across CPUs anyway (README,
"Reproducibility")."""

import sys

from curator.evaluation.efficacy.cli import main

sys.exit(main())
