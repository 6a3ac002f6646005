"""Entry point of a data stage. Its numeric environment is pinned by ``curator/__init__``
(:func:`curator.determinism.pin_entry_point`) before this package or numpy, faiss, torch or onnxruntime load,
so its output bytes are the same on every x86_64 machine (see curator.determinism)."""

import sys

from curator.datasets.cli import main

sys.exit(main())
