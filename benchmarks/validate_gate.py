"""Validate the quality gate's threshold on a mini dataset it was not chosen on.

``select.quality_gate.min_score`` (0.8 on ``ref_quality``) was chosen by looking at the default mini dataset
(``dataset.seed=0``), the same ground truth that ``metrics/select.json`` then reports ``imperfect_ref_share``
on. This script builds the mini dataset again for each ``--seeds`` entry in a scratch folder outside the
repository (default ``/tmp/gate/seed<N>``; ``dataset.seed`` and ``simulation.seed`` both set to N, every other
knob as in ``--config``), scores the train split with the scorers ``ref_quality`` needs (the gate's column is
computed exactly as in the pipeline; ``loss_proxy`` is reduced to SI-SDR, which the gate never reads) and
reports, for flagging an imperfect reference (the dataset's ``reference_truth.csv``) as ``column < min_score``:

- ``precision`` = flagged rows that are imperfect / flagged rows,
- ``recall``    = imperfect rows flagged / imperfect rows,
- ``auc``       = P(an imperfect reference scores lower than a clean one), ties counted half (threshold-free),
- ``kept_imperfect_share`` = the imperfect share (rows and hours) of what the gate keeps (what selection
  starts from), next to the pool's own share.

With ``--probe`` it also runs the probe stage with ``probe.ranking=reducible_loss`` on each seed and reports, for
``probe_holdout_loss`` and ``probe_reducible_loss``, the AUC of ranking imperfect references higher and their
share of each ranking's top 10% of speech rows (a noisy target should rank high by held-out loss, lower by
reducible loss).

Speech-free rows (silent target: no reference to judge, ``ref_quality`` NaN) are left out and counted. A seed
whose scores already exist in the scratch folder is not rebuilt (``--rebuild`` to force). Prints one JSON
object on stdout (progress on stderr).

    nice python benchmarks/validate_gate.py [--seeds 0 1] [--scratch /tmp/gate] [--config params.yaml] [--probe]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.stats import mannwhitneyu

REPO = Path(__file__).resolve().parents[1]
CHOSEN_ON_SEED = 0
"""The dataset seed the default threshold was chosen on (the default mini dataset)."""
TOP_SHARE = 0.1
"""--probe: the share of speech rows a ranking's top is measured on (cvar's default alpha)."""
SCORER_OF = {"ref_dnsmos_ovrl": "dnsmos", "ref_dnsmos_sig": "dnsmos", "ref_dnsmos_bak": "dnsmos", "mos_dns": "dnsmos",
             "ref_bandwidth_ratio": "bandwidth", "ref_bandwidth_hz": "bandwidth", "ref_clip_ratio": "clipping",
             "ref_speech_ratio": "vad", "ref_distillmos": "distillmos", "mos_nisqa": "nisqa"}
"""Scorer that writes each reference column the gate may use."""


def scorers_for(cfg: dict) -> list[str]:
    """The scorers whose columns ``ref_quality`` (with its configured weights) and the gate's column need."""
    weights = cfg["score"]["ref_quality"]["weights"]
    cols = {c for c, w in weights.items() if w > 0}
    column = cfg["select"]["quality_gate"]["column"]
    if column != "ref_quality":
        cols.add(column)
    unknown = sorted(c for c in cols if c not in SCORER_OF)
    if unknown:
        raise SystemExit(f"error: no known scorer writes {unknown}; extend SCORER_OF in {__file__}")
    return sorted({SCORER_OF[c] for c in cols} | {"sisdr"})


SRC = REPO / "src"
PROBE_FILE = "probe_loss.parquet"  # the probe stage's output in a seed's scratch folder
"""The package the builds and scoring run (``--src`` points them at another checkout's, e.g. a ``git archive``)."""


def run(cmd: list[str], cwd: Path, log: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    print(f"[{cwd.name}] {' '.join(cmd[2:5])} ...", file=sys.stderr, flush=True)
    with log.open("a") as fh:
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT)
    if proc.returncode:
        raise SystemExit(f"error: {' '.join(cmd)} failed with exit code {proc.returncode}; see {log}")


def build_and_score(seed: int, scratch: Path, config: Path, cfg: dict, rebuild: bool) -> tuple[Path, Path, dict]:
    """Build the mini dataset with ``seed`` under ``scratch/seed<N>`` and score its train split."""
    work = scratch / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    scores, truth = work / "train_scores.parquet", work / "data" / "external" / "mini" / "reference_truth.csv"
    timing: dict = {}
    stamp, fingerprint = work / "fingerprint.txt", _fingerprint(seed, config)
    if scores.is_file() and truth.is_file() and not rebuild:
        if stamp.is_file() and stamp.read_text() == fingerprint:
            return scores, truth, {"reused": True}
        print(f"[{work.name}] the scratch build is from other code or params: rebuilding", file=sys.stderr)
    stamp.unlink(missing_ok=True)
    (work / PROBE_FILE).unlink(missing_ok=True)  # the probe ranks this build's rows: it goes with it
    log = work / "log.txt"
    log.write_text("")
    py = sys.executable
    data = ["data.dataset=mini", f"data.root={work / 'data'}", f"dataset.seed={seed}", f"simulation.seed={seed}"]
    t0 = time.perf_counter()
    run([py, "-m", "curator.datasets", "--dataset_cfg", str(config), "--data_cfg", str(config), "--stage", "all",
         "--split", "train", "--metrics", str(work / "manifest.json"), *data], work, log)
    timing["build_seconds"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    scorers = ",".join(scorers_for(cfg))
    run([py, "-m", "curator.scoring", "--config", str(config), *data[:2],
         f"data.manifest={work / 'data' / 'manifests' / 'mini' / 'train.jsonl'}", "--out", str(scores),
         "--metrics", str(work / "score.json"), "--timings", str(work / "score_timings.json"),
         f"score.scorers=[{scorers}]", "score.loss_proxy.weights={in_sisdr: 1.0}",
         "score.loss_proxy.probe_path=null", f"score.work_dir={work / 'shards'}"], work, log)
    timing["score_seconds"] = round(time.perf_counter() - t0, 1)
    stamp.write_text(fingerprint)
    return scores, truth, timing


def _fingerprint(seed: int, config: Path) -> str:
    """What a scratch build depends on: the seed, the config's bytes and every source file of the package, so a
    build from older code or params (another simulation, say) is never reused."""
    h = hashlib.sha256(f"{seed}\n".encode() + config.read_bytes())
    for path in sorted(SRC.rglob("*.py")):
        h.update(str(path.relative_to(SRC)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def gate_figures(scores: Path, truth: Path, column: str, min_score: float) -> dict:
    """Precision, recall and AUC of ``column < min_score`` as a detector of imperfect references."""
    df = pd.read_parquet(scores, columns=["utt_id", "duration_sec", "status", "speech_free", column])
    t = pd.read_csv(truth, dtype={"utt_id": str}, keep_default_na=False)
    df = df.merge(t[["utt_id", "imperfect", "defect"]], on="utt_id", how="inner", validate="one_to_one")
    speech_free = df["speech_free"].astype(bool) | df[column].isna()
    n_excluded = int(speech_free.sum())
    df = df[~speech_free & (df["status"] == "ok")]
    bad = df["imperfect"].to_numpy() == 1
    score = df[column].to_numpy(dtype=np.float64)
    flagged = score < min_score
    tp = int((flagged & bad).sum())
    auc = (float(mannwhitneyu(score[~bad], score[bad]).statistic) / (int((~bad).sum()) * int(bad.sum()))
           if bad.any() and (~bad).any() else None)
    hours = df["duration_sec"].to_numpy() / 3600.0
    kept = ~flagged
    per_defect = {d: {"rows": int((df["defect"] == d).sum()),
                      "recall": round(float(flagged[(df["defect"] == d).to_numpy()].mean()), 4)}
                  for d in sorted(set(df.loc[bad, "defect"]))}
    return {
        "rows": int(len(df)), "imperfect_rows": int(bad.sum()), "speech_free_rows_excluded": n_excluded,
        "flagged_rows": int(flagged.sum()), "true_positives": tp,
        "precision": round(tp / int(flagged.sum()), 4) if flagged.any() else None,
        "recall": round(tp / int(bad.sum()), 4) if bad.any() else None,
        "auc": round(auc, 4) if auc is not None else None,
        "per_defect": per_defect,
        "pool_imperfect_share": {"rows": round(float(bad.mean()), 4),
                                 "hours": round(float(hours[bad].sum() / hours.sum()), 4)},
        "kept_share": {"rows": round(float(kept.mean()), 4), "hours": round(float(hours[kept].sum() / hours.sum()), 4)},
        "kept_imperfect_share": {
            "rows": round(float(bad[kept].mean()), 4) if kept.any() else None,
            "hours": round(float(hours[kept & bad].sum() / hours[kept].sum()), 4) if kept.any() else None},
    }


def probe_figures(seed: int, scratch: Path, scores: Path, truth: Path, rebuild: bool) -> dict:
    """Both probe rankings (``probe.ranking: reducible_loss`` writes both columns) against the same ground truth:
    AUC of ranking imperfect references higher, and their share of the top ``TOP_SHARE`` of speech rows."""
    work = scratch / f"seed{seed}"
    out = work / PROBE_FILE
    if rebuild or not out.is_file():
        env_src = REPO / "src"  # the probe rankings are this checkout's (a snapshot of an older commit may lack them)
        cmd = [sys.executable, "-m", "curator.scoring.probe", "--config", str(REPO / "params.yaml"),
               f"data.manifest={work / 'data' / 'manifests' / 'mini' / 'train.jsonl'}", "--out", str(out),
               "--metrics", str(work / "probe.json"), "probe.ranking=reducible_loss"]
        env = {**os.environ, "PYTHONPATH": str(env_src)}
        print(f"[{work.name}] curator.scoring.probe ...", file=sys.stderr, flush=True)
        with (work / "log.txt").open("a") as fh:
            if subprocess.run(cmd, cwd=work, env=env, stdout=fh, stderr=subprocess.STDOUT).returncode:
                raise SystemExit(f"error: {' '.join(cmd)} failed; see {work / 'log.txt'}")
    df = pd.read_parquet(out).merge(pd.read_parquet(scores, columns=["utt_id", "speech_free"]), on="utt_id")
    df = df.merge(pd.read_csv(truth, dtype={"utt_id": str}, keep_default_na=False)[["utt_id", "imperfect"]],
                  on="utt_id")
    df = df[~df["speech_free"].astype(bool)]
    bad = df["imperfect"].to_numpy() == 1
    figures = {"rows": int(len(df)), "top_share": TOP_SHARE, "pool_imperfect_share": round(float(bad.mean()), 4)}
    for col in ("probe_holdout_loss", "probe_reducible_loss"):
        v = df[col].to_numpy(dtype=np.float64)
        auc = float(mannwhitneyu(v[bad], v[~bad]).statistic) / (int(bad.sum()) * int((~bad).sum()))
        top = np.argsort(-v, kind="stable")[: int(TOP_SHARE * len(v))]
        figures[col] = {"auc_imperfect_higher": round(auc, 4), "imperfect_share_of_top": round(float(bad[top].mean()), 4)}
    return figures


def main() -> int:
    global SRC
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[CHOSEN_ON_SEED, 1],
                    help=f"dataset seeds to build and score (default: {CHOSEN_ON_SEED} = chosen on, 1 = held out)")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/gate"), help="scratch folder (outside the repository)")
    ap.add_argument("--config", type=Path, default=REPO / "params.yaml", help="params file (default: params.yaml)")
    ap.add_argument("--min-score", type=float, default=None, help="threshold to test (default: the config's)")
    ap.add_argument("--rebuild", action="store_true", help="rebuild and rescore even when scores exist")
    ap.add_argument("--probe", action="store_true", help="also run the probe stage (this checkout's code) with "
                    "probe.ranking=reducible_loss and report how each probe ranking relates to the imperfect references")
    ap.add_argument("--src", type=Path, default=SRC, help="package folder the builds and scoring import "
                    "(default: this checkout's src/; e.g. a `git archive HEAD src` copy, immune to edits in flight)")
    args = ap.parse_args()
    SRC = args.src.resolve()
    scratch, config = args.scratch.resolve(), args.config.resolve()
    if scratch == REPO or REPO in scratch.parents:
        raise SystemExit(f"error: --scratch {scratch} is inside the repository; give a folder outside it")
    cfg = yaml.safe_load(config.read_text())
    gate = cfg["select"]["quality_gate"]
    column = gate["column"]
    min_score = args.min_score if args.min_score is not None else gate["min_score"]
    if min_score is None:
        raise SystemExit("error: select.quality_gate.min_score is null (gate off); pass --min-score")
    mini = cfg["dataset"]["mini"]
    out: dict = {
        "gate": {"column": column, "min_score": min_score, "flags": f"{column} < {min_score}"},
        "chosen_on_seed": CHOSEN_ON_SEED,
        "conditions": {"dataset": "mini", "train_rows": mini["n_train"], "imperfect_fraction": mini["imperfect_fraction"],
                       "seed_params": "dataset.seed = simulation.seed = N", "scorers": scorers_for(cfg),
                       "config": str(config.relative_to(REPO)) if REPO in config.parents else str(config),
                       "code": str(SRC),
                       "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}"},
        "seeds": {},
    }
    for seed in args.seeds:
        scores, truth, timing = build_and_score(seed, scratch, config, cfg, args.rebuild)
        fig = gate_figures(scores, truth, column, min_score)
        fig["role"] = "in-sample (threshold chosen here)" if seed == CHOSEN_ON_SEED else "held out"
        fig["timing"] = timing
        if args.probe:
            fig["probe_rankings"] = probe_figures(seed, scratch, scores, truth, args.rebuild)
        out["seeds"][str(seed)] = fig
    json.dump(out, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
