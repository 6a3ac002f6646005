"""Per-augmentation flags at scale: the flag matrix, a flag filter, flag-sliced pools and a raked plan; prints JSON.

A synthetic scores table (the scoring schema, 8-d embeddings: the embedding copy is not what is measured here)
with about half of the rows of other labels reverberated, as the official simulation does. Timed in this
process, each step once: the boolean flag matrix from the Arrow list column, ``load_pool`` with empty filters
as the select stage runs it (the yardstick), ``load_pool`` with ``data.filters.augmentations`` and a flag slice dimension, and
``plan_quotas`` with distortion quotas plus a flag quota (raked). The 1-minute load average is recorded: on a
shared machine the figures are upper bounds. The whole selection with a flag quota: ``bench_select.py
--override "select.quotas.augmentations={reverb: 0.6}"``.

usage: python benchmarks/bench_flags.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from curator.contract.data import Filters
from curator.contract.flags import flags_from_arrow
from curator.selection.pool import load_pool
from curator.selection.quotas import plan_quotas
from curator.selection.synthetic import SyntheticSpec, synthetic_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    table, _ = synthetic_scores(SyntheticSpec(n=args.rows, dim=8, seed=0))
    out: dict = {"rows": args.rows, "load_avg_1min": round(os.getloadavg()[0], 2)}

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        value = fn()
        out[f"{name}_seconds"] = round(time.perf_counter() - t0, 3)
        return value

    flags = timed("flag_matrix", lambda: flags_from_arrow(table["augmentations"]))
    timed("load_pool_no_flags", lambda: load_pool(table, ["distortion"], Filters()))
    pool = timed("load_pool_flag_filter_and_slice", lambda: load_pool(
        table, ["distortion"], Filters(augmentations=["reverb", "clipping"]), flag_slices=["reverb"]))
    quotas = {"distortion": {"noise": 0.2, "reverb": 0.1}, "augmentations": {"reverb": 0.6}}
    plan = timed("plan_quotas_raked", lambda: plan_quotas(pool, np.ones(pool.n, dtype=bool), 0.1 * pool.hours.sum(),
                                                          quotas))
    has = np.array(["+reverb" in v for v in pool.slice_values])
    out.update(flags=flags.names, kept_rows=pool.n, slices=pool.n_slices,
               planned_reverb_share=round(float(plan.feasible[has].sum() / plan.budget), 6))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
