"""``curator summary``: the pipeline's headline in one screen, read from the stages' metrics files.

``make repro`` ends with it: what was imported, scored and selected, how training went and, per evaluated
split, each metric's paired improvement over the noisy input with its confidence interval and verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_DIR = "metrics"


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _num(x: Any, nd: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def lines(folder: Path) -> list[str]:
    """The summary's lines; a stage whose metrics file is missing says so."""
    out = []
    manifest = _load(folder / "manifest.json")
    if manifest:
        parts = [f"{s} {b['utterances']} utts / {b['hours']:.2f} h ({b['rejected']} rejected"
                 + "".join(f", {n} {what}" for what, n in _manifest_notes(b)) + ")"
                 for s, b in manifest["splits"].items()]
        out.append(f"manifest  [{manifest['dataset']}] " + "; ".join(parts))
    score = _load(folder / "score.json")
    if score:
        out.append(f"score     {score['rows_scored']} scored, {score['rejects']} rejected "
                   f"{score['status_counts']}, {score['speech_free_ok']} speech-free")
    select = _load(folder / "select.json")
    strategy = _strategy(folder)
    if strategy:
        out.append(f"curated   {strategy}")
    if select:
        share = select.get("imperfect_ref_share") or {}
        out.append(f"select    {select['n_selected']} utts, {select['hours_selected']:.3f} of "
                   f"{select['budget_hours']:.3f} h budget; imperfect references {_num(share.get('selected'))} "
                   f"(pool {_num(share.get('pool'))})" + ("; gate threshold in-sample on mini seed 0"
                                                          if share.get("threshold_note") else ""))
    train = _load(folder / "train" / "metrics.json")
    if train:
        skipped = {k: (train.get(f"skipped_{k}") or {}).get("n", 0) for k in ("train", "val")}
        out.append(f"train     best val loss {_num(train.get('best_val_loss'), 4)} at step {train.get('best_step')} "
                   f"of {train.get('steps')} ({train.get('n_params')} params); {train.get('n_train_utts')} train / "
                   f"{train.get('n_val_utts')} val utts, skipped {skipped['train']} / {skipped['val']}"
                   + (f", {train['val_without_target']} dev rows without a target"
                      if train.get("val_without_target") else ""))
    evaluation = _load(folder / "eval.json")
    if evaluation:
        for split, block in evaluation.items():
            if split == "unavailable_metrics" or not isinstance(block, dict):
                continue
            if "metrics" not in block:
                out.append(f"eval      {split}: written by an older version; rerun `dvc repro eval`")
                continue
            free = block.get("speech_free") or {}
            extra = [f"{block['n_skipped']} skipped" if block.get("n_skipped") else "",
                     (f"{free['n']} speech-free (output {_num(free.get('output_to_input_db'), 1)} dB vs input)"
                      if free.get("n") else ""),
                     (f"{block['n_speech_without_reference']} speech rows without a reference"
                      if block.get("n_speech_without_reference") else "")]
            out.append(f"eval      {split}: {block['n_utts']} utts" + "".join(f", {e}" for e in extra if e)
                       + "; enhanced vs noisy input on the same utterances, "
                       + (f"[{round(100 * block['confidence'])}% CI]:" if block.get("confidence") else "[CI]:"))
            for name, m in block["metrics"].items():
                if m["improvement"] is None:
                    out.append(f"  {name:18s} not scored on both sides")
                    continue
                out.append(f"  {name:18s} {m['enhanced']:8.3f} vs {m['noisy']:8.3f}  {m['improvement']:+8.3f} "
                           f"[{m['ci_low']:+.3f}, {m['ci_high']:+.3f}]  {m['verdict']}")
            rank = block.get("urgent_rank") or {}
            if rank.get("official"):
                missing = sorted(v for vs in (rank.get("official_missing") or {}).values() for v in vs)
                unavailable = set(evaluation.get("unavailable_metrics") or {})
                parts = [f"unavailable {[m for m in missing if m in unavailable]}" if unavailable & set(missing) else "",
                         f"not in eval.metrics {[m for m in missing if m not in unavailable]}"
                         if set(missing) - unavailable else ""]
                out.append(f"  URGENT rank (official metrics): {rank['official']}"
                           + (f"; not computed: {'; '.join(p for p in parts if p)}" if missing else ""))
                for name, substitute in (rank.get("official_stand_ins") or {}).items():
                    out.append(f"    {name} ran {substitute}")
        if evaluation.get("unavailable_metrics"):
            out.append(f"  unavailable metrics (see metrics/eval.json for the reasons): "
                       f"{', '.join(sorted(evaluation['unavailable_metrics']))}")
    compare = _load(folder / "compare.json")
    if compare and isinstance(compare.get("vs_baseline"), dict):
        out.append(f"efficacy  each strategy vs `{compare.get('baseline')}` at equal hours on {compare.get('split')} "
                   f"({compare.get('n_utts')} utts, seeds {compare.get('seeds')}); the "
                   + (f"{round(100 * compare['confidence'])}% " if compare.get("confidence") else "")
                   + "interval excludes 0:")
        for metric in compare.get("metrics", []):
            counts = {"better": 0, "worse": 0, "no evidence": 0}
            family = {"better": 0, "worse": 0}
            for cells in compare["vs_baseline"].values():
                for figures in cells.values():
                    cell = figures.get(metric) or {}
                    if cell.get("verdict") in counts:
                        counts[cell["verdict"]] += 1
                    if cell.get("family_verdict") in family:
                        family[cell["family_verdict"]] += 1
            held = (f"; after Benjamini-Hochberg over the {sum(counts.values())}: better {family['better']}, "
                    f"worse {family['worse']}" if compare.get("slice_verdicts", {}).get("correction") == "bh" else "")
            out.append(f"  {metric:18s} better {counts['better']}, worse {counts['worse']}, "
                       f"no evidence {counts['no evidence']} (of {sum(counts.values())}{held}; metrics/compare.md)")
    return out or [f"no stage metrics under {folder} yet: run `dvc repro`"]


def _strategy(folder: Path) -> str | None:
    """Which selection the training list came from: the strategy in the curated list's sidecar, found through
    ``params.yaml`` beside the metrics folder (``data.root``, ``curation.level``); None when absent or unreadable."""
    from curator.config import ConfigError, load_params, load_section
    from curator.contract.curated import read_meta

    base = folder.resolve().parent
    try:
        cfg = load_params(base / "params.yaml")
        level = load_section("curation", cfg=cfg).level
        where = load_section("data", cfg=cfg, plugins=False).curated_list(level)
        meta = read_meta(where if where.is_absolute() else base / where) or {}
    except (OSError, ConfigError, ValueError):  # ContractError is a ValueError: a summary line is not worth failing
        return None
    name = (meta.get("strategy") or {}).get("name")
    return f"curation.level {level}, strategy {name} ({where.parent})" if name else None


def status_lines(folder: Path) -> list[str]:
    """Whether the figures above are the current pipeline's: the stages ``dvc status`` finds out of date.

    A stage whose params, code or input changed since its last run (say, ``dvc repro manifest`` on new data
    without the rest) still has its old metrics file, which the lines above read; this says which ones."""
    try:
        from dvc.repo import Repo
    except ImportError:  # pragma: no cover - dvc is a dependency
        return ["status    not checked: dvc is not importable"]
    try:
        with Repo(Repo.find_root(str(folder))) as repo:
            status = repo.status()
    except Exception as exc:  # noqa: BLE001 - not a DVC repo, an unreadable dvc.yaml: say so, summary goes on
        return [f"status    not checked ({type(exc).__name__}: {exc})"]
    if not status:
        return ["status    every stage is up to date (`dvc status`): the figures above are the current pipeline's"]
    groups: dict[str, list[str]] = {}
    for name in status:  # in DVC's order; matrix cells ("cmp_train@cvar-0.25-0") are grouped by stage
        stage = name.rpartition(":")[2].split("@", 1)[0]
        groups.setdefault(stage, []).append(name)
    why = sorted({key for changes in status.values() for change in changes
                  for key in (change if isinstance(change, dict) else {change: None})})
    shown = [f"{stage} x{len(names)}" if len(names) > 1 else stage for stage, names in groups.items()]
    return [f"status    {len(status)} stage(s) out of date ({', '.join(why)}): {', '.join(shown)}; their lines above "
            "describe an earlier run: `dvc repro` (details: `dvc status`)"]


def _manifest_notes(split: dict[str, Any]) -> list[tuple[str, int]]:
    """Counts worth a glance beside a split's size: rows without a target, float files above full scale."""
    notes = [("without a clean target", (split.get("without_target") or {}).get("n", 0)),
             ("above full scale", (split.get("over_full_scale") or {}).get("n", 0))]
    return [(what, n) for what, n in notes if n]


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="curator summary", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--metrics_dir", default=DEFAULT_DIR, help="folder of the stages' metrics (default: %(default)s)")
    ap.add_argument("--no-status", dest="status", action="store_false",
                    help="skip the `dvc status` check that names the stages whose metrics are out of date")
    args = ap.parse_args(argv)
    folder = Path(args.metrics_dir)
    print("\n".join(lines(folder) + (status_lines(folder) if args.status else [])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
