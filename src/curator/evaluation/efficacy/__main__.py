"""Entry point of the efficacy matrix. A ``select`` cell is data (a curated list, pairs simulated from selected
sources): ``curator/__init__`` pins its numeric environment before numpy or faiss load, as in the select stage
(:data:`curator.determinism.ENTRY_POINTS`), so the list is the same on every x86_64 machine. The training,
evaluation and report cells are pinned too (one thread in the environment; torch's pool from the params): with
oneDNN off and the fused AdamW their float32 work is the same on every x86-64-v3 CPU (README, "Reproducibility")."""

import sys

from curator.evaluation.efficacy.cli import main

sys.exit(main())
