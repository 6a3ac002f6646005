"""``curator check``: validate the whole params.yaml before any stage runs (the Makefile runs it first)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from curator.config import DEFAULT_PARAMS, ConfigError, load_params, validate_params


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="curator check", description=__doc__)
    ap.add_argument("--config", default=DEFAULT_PARAMS, help="params file (default: params.yaml)")
    ap.add_argument("overrides", nargs="*", help="dotted overrides such as select.alpha=0.05")
    args = ap.parse_args(argv)
    try:
        sections = validate_params(load_params(args.config, args.overrides))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.config}: {len(sections)} sections valid ({', '.join(sections)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
