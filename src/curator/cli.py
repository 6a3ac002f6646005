"""``curator <stage> ...``: one entry point for every stage (also ``python -m curator <stage>``).

Each stage is a thin function in its subpackage's ``cli`` module: it parses flags, loads and validates its
params section, calls the library and writes outputs atomically.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

# command -> (module with main(argv), extra argv put in front of the user's)
COMMANDS: dict[str, tuple[str, list[str]]] = {
    "datasets": ("curator.datasets.cli", []),
    "prepare": ("curator.datasets.cli", ["--stage", "prepare"]),
    "manifest": ("curator.datasets.cli", ["--stage", "manifest"]),
    "probe": ("curator.scoring.probe.cli", []),
    "score": ("curator.scoring.cli", []),
    "select": ("curator.selection.cli", []),
    "train": ("curator.training.cli", []),
    "eval": ("curator.evaluation.cli", []),
    "sources": ("curator.datasets.cli", ["--stage", "sources"]),
    "source_score": ("curator.scoring.sources.cli", []),
    "source_select": ("curator.selection.sources.cli", []),
    "source_simulate": ("curator.datasets.simulation.from_selection", []),
    "efficacy": ("curator.evaluation.efficacy.cli", []),
    "check": ("curator.check", []),
    "compare": ("curator.evaluation.compare", []),
    "enhance": ("curator.evaluation.inference", []),
    "import-official": ("curator.training.official_weights", []),
    "summary": ("curator.summary", []),
}

ENTRY_MODULES: dict[str, str] = {
    "datasets": "curator.datasets", "prepare": "curator.datasets", "manifest": "curator.datasets",
    "sources": "curator.datasets", "probe": "curator.scoring.probe", "score": "curator.scoring",
    "source_score": "curator.scoring.sources", "select": "curator.selection",
    "source_select": "curator.selection.sources", "source_simulate": "curator.datasets.simulation.from_selection",
    "train": "curator.training", "eval": "curator.evaluation", "efficacy": "curator.evaluation.efficacy",
}
"""The module ``dvc.yaml`` runs (``python -m <module>``) for each stage command: ``curator <command>`` pins the
numeric environment as that process would (:func:`curator.determinism.pin_entry_point`: every stage) before
the stage's modules load, so its output bytes are the DVC stage's."""

PINNED_AS: dict[str, str] = {"enhance": "curator.evaluation"}
"""Commands that are no stage but whose output must be a stage's bytes, pinned as that stage's entry point:
``curator enhance`` writes the signals the eval stage scores."""

USAGE = """usage: curator <command> [options]

Stages of the DVC pipeline (run them with `dvc repro`; each also runs alone):
  prepare    make (mini) or import/verify (urgent2026, folder) the dataset's audio
  manifest   write data/manifests/<dataset>/{train,dev,test}.jsonl
  probe      a small model's per-utterance loss -> data/scores/probe_loss.parquet
  score      per-utterance proxies -> data/scores/train_scores.parquet
  select     curated subset -> data/curated/pairs/curated_train.csv (+ _meta.json)
  train      train an enhancement model on the curated list -> models/<exp>/best.ckpt
  eval       enhance the test split, URGENT metrics, tails and slices -> metrics/eval.json
  sources    source-recording manifest (speech, noise, wind, RIRs) -> data/manifests/<dataset>/sources.jsonl
  source_score     per-source scores -> data/scores/source_scores.parquet
  source_select    selected sources -> data/curated/source_selection/selected_sources.csv
  source_simulate  pairs simulated from the selected sources -> data/curated/sources/
  efficacy   the selector x budget x seed matrix: select | train | eval | report (dvc repro cmp_report)

Other commands:
  datasets   the datasets CLI (--stage download|prepare|verify|manifest|all)
  check      validate every section of params.yaml and exit
  compare    paired comparison of experiments (CIs, win rate, tails, slices, verdicts, URGENT rank)
  enhance    run a checkpoint on noisy audio (the blind test set) -> <dir>/wav/<uid>.wav + inf.scp, as the
             official inference.py writes them
  import-official  an official baseline checkpoint (BSRNN or FlowSE) -> this project's checkpoint, to run
             natively (enhance, eval) or fine-tune from (train.init_from)
  summary    the pipeline's headline figures in one screen (run by `make repro`)

`curator <command> --help` describes each command's flags.
"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"curator: unknown command '{command}'; valid: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module, prefix = COMMANDS[command]
    pinned = ENTRY_MODULES.get(command) or PINNED_AS.get(command)
    if argv is None and pinned:  # a process of its own: pin before numpy, torch, faiss load
        from curator.determinism import pin_entry_point

        pin_entry_point([sys.executable, "-m", pinned, *prefix, *rest])
    return int(importlib.import_module(module).main(prefix + rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
