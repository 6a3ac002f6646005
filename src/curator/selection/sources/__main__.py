"""Entry point of the source_select stage: the numeric environment is pinned before numpy or faiss load, so its
output bytes are the same on every x86_64 machine (see curator.determinism)."""

import sys

from curator.determinism import configure_environment

configure_environment(threads=None)

from curator.selection.sources.cli import main  # noqa: E402  (after the environment is pinned)

sys.exit(main())
