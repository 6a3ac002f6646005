"""Entry point of a data stage. Its numeric environment is pinned by ``curator/__init__``
(:func:`curator.determinism.pin_entry_point`) before this package or numpy, faiss, torch or onnxruntime load,
so its output bytes are the same on every x86_64 machine (see curator.determinism)."""

import atexit
import os
import sys

from curator.selection.sources.cli import main

code = main()
# Every output is written, closed and renamed into place by now: run the exit handlers (logging's flush among
# them), then end the process without the interpreter's teardown of pandas, pyarrow, numba and matplotlib
# (0.6 s of the 1M-row benchmark's wall time, measured). CPython has no public call for the handlers alone.
atexit._run_exitfuncs()
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
