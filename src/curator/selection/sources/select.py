"""Source-level selection: which speech recordings to simulate from, and which noise, wind and RIR sources to keep.

Speech goes through the pair-level machinery unchanged (``selection/base.py``: the registered strategies, the
quality gate, quotas with water-filling and raking, the quota-merged greedy, the near-duplicate rule), on a
pool built from the source table: one row per scored speech source, ``utt_id`` = ``source_id``, the slice
columns ``corpus``, ``language``, ``band`` (effective bandwidth, ``source_select.bandwidth_edges_hz``) and
``sr``, and as ``loss_proxy`` the source's hardness (below). What only sources have:

- **caps**, which hold exactly on the selected speech: ``max_hours_per_speaker`` (per corpus and speaker; a
  source without a speaker label is its own speaker) keeps each speaker's best rows, in the strategy's order,
  up to the cap before the greedy runs (so the budget is filled by other speakers); ``max_share_per_corpus``
  and ``max_share_per_language`` bound a value's share of the *selected* hours: each value is first limited to
  its share of the reachable budget, then, after the greedy, the latest picks of any value above its share of
  the final total are dropped until every share holds (the total shrinks as rows go, so this repeats until
  nothing changes; dropped rows are counted as ``cap_trimmed``);
- **hardness** (``source_select.hardness: pairs``, what cvar ranks by): the mean ``loss_proxy`` of the
  pair-level scores rows simulated from the source (their ``speech_uid``), status ok, speech-free rows left
  out. Fallback: a source no scored pair used gets the mean hardness of the sources that have one (the middle
  of the scale: it neither enters the cvar tail nor is pushed out of it), counted in the metrics;
- the **list** selector (``source_select.name: list``): the speech sources a file names, in list order. Ids the
  manifest has no speech source for, and listed sources whose score status is not ok, are dropped and reported
  (count and examples); repeated ids count once. When the list's hours fit the budget it is reproduced
  exactly; otherwise the longest prefix of the list that fits is kept (and the metrics say so). No gate,
  quota, cap or diversity rule applies: the list is the variant;
- **noise, wind and RIR** sources are not budgeted: every one that passes its filters is kept (score status
  ok; for noise and wind, ``noise_has_speech`` false when ``source_select.noise.drop_with_speech``). A source
  the scores table has no row for is kept as ``unscored`` and counted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curator.contract.filters import SECONDS_PER_HOUR
from curator.contract.scores import STATUS_OK
from curator.contract.source_scores import NOISE_HAS_SPEECH_COLUMN
from curator.contract.sources import KINDS, SPEECH
from curator.selection.base import Selection, SelectionWarning
from curator.selection.fill import HOURS_EPS, UNDECIDED
from curator.selection.pool import MISSING_LABEL, Pool, PoolError
from curator.selection.registry import build
from curator.selection.report import build_metrics, finite_or_none, tail_stats
from curator.selection.sources.params import LIST_SELECTOR, SourceSelectParams

log = logging.getLogger("curator.selection.sources")

SCORE_REQUIRED = ("source_id", "kind", "status", "duration_sec")
"""Columns the source scores table must have (``contract/source_scores.py``)."""
EMBED_COLUMN = "ssl_embed"
POOL_RESERVED = ("utt_id", "kind", "distortion", "loss_proxy", "speech_free", EMBED_COLUMN)
"""Pool columns the selection sets itself (a score column of that name is not copied in)."""
NOISE_KINDS = ("noise", "wind_noise")
"""Kinds whose ``noise_has_speech`` flag is a defect that drops the source."""
PASS_KINDS = tuple(k for k in KINDS if k != SPEECH)
EXAMPLES = 10
"""Ids quoted as examples of a count (missing list ids, dropped noise clips)."""
CARRIED_SCORES = ("ref_quality", "mos_dns", "ref_bandwidth_hz")
"""Score columns copied into the selected-sources CSV (where the scores table has them)."""


class SourceSelectionError(ValueError):
    """The inputs cannot give a source selection; the message names the file or knob and what to do."""


@dataclass
class SourceSelection:
    """What a run produced: the CSV rows, the metrics, sidecar extras, and the speech selection (None for list)."""

    frame: pd.DataFrame
    metrics: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    selection: Selection | None = None


# --------------------------------------------------------------------------------------------------- inputs


def check_scores(scores: pa.Table, where: str) -> None:
    """The columns every use needs, and one row per (kind, source_id)."""
    missing = [c for c in SCORE_REQUIRED if c not in scores.column_names]
    if missing:
        raise SourceSelectionError(f"source scores '{where}' lack column(s) {', '.join(missing)} (has: "
                                   f"{', '.join(scores.column_names)}); rerun the source_score stage")
    key = pd.DataFrame({"kind": scores["kind"].to_numpy(zero_copy_only=False),
                        "source_id": scores["source_id"].to_numpy(zero_copy_only=False)})
    dup = key.duplicated()
    if dup.any():
        row = key[dup].iloc[0]
        raise SourceSelectionError(f"source scores '{where}' have {int(dup.sum())} repeated (kind, source_id), e.g. "
                                   f"{row['kind']} '{row['source_id']}'; each source must be scored once")


def kind_rows(scores: pa.Table, kind: str) -> pa.Table:
    """The scores rows of one kind: a zero-copy slice when they are contiguous (the table is sorted by kind)."""
    rows = np.flatnonzero(pc.equal(scores["kind"], kind).fill_null(False).to_numpy(zero_copy_only=False))
    if len(rows) and rows[-1] - rows[0] == len(rows) - 1:
        return scores.slice(int(rows[0]), len(rows))
    return scores.take(pa.array(rows, type=pa.int64()))


def band_of(bandwidth_hz: np.ndarray, edges: Sequence[float], labels: Sequence[str]) -> np.ndarray:
    """Effective-bandwidth band per value: ``[edge[i-1], edge[i])`` is band ``i``; NaN is ``unknown``."""
    bw = np.asarray(bandwidth_hz, dtype=np.float64)
    idx = np.searchsorted(np.asarray(edges, dtype=np.float64), np.nan_to_num(bw, nan=0.0), side="right")
    out = np.asarray(labels, dtype=object)[idx]
    out[~np.isfinite(bw)] = MISSING_LABEL
    return out


def pair_hardness(pair_scores: pa.Table, source_ids: np.ndarray, where: str) -> tuple[np.ndarray, dict[str, Any]]:
    """Mean ``loss_proxy`` of the status-ok, speech pairs simulated from each source (NaN where none); stats."""
    missing = [c for c in ("speech_uid", "loss_proxy") if c not in pair_scores.column_names]
    if missing:
        raise SourceSelectionError(f"pair scores '{where}' lack column(s) {', '.join(missing)}: source hardness "
                                   "needs the speech_uid of every pair (scores schema 2); rerun the score stage")
    keep = pc.is_valid(pair_scores["speech_uid"]).to_numpy(zero_copy_only=False)
    loss = pair_scores["loss_proxy"].to_numpy(zero_copy_only=False).astype(np.float64)
    keep &= np.isfinite(loss)
    if "status" in pair_scores.column_names:
        keep &= pc.equal(pair_scores["status"].fill_null(""), STATUS_OK).to_numpy(zero_copy_only=False)
    if "speech_free" in pair_scores.column_names:
        keep &= ~pair_scores["speech_free"].fill_null(False).to_numpy(zero_copy_only=False).astype(bool)
    uid = pair_scores["speech_uid"].filter(pa.array(keep))
    pos = (pc.index_in(pc.cast(uid, pa.string()), value_set=pa.array(source_ids, type=pa.string()))
           .fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64))
    found = pos >= 0
    idx = pos[found]
    loss = loss[keep][found]
    n = len(source_ids)
    count = np.bincount(idx, minlength=n)
    total = np.bincount(idx, weights=loss, minlength=n)
    hardness = np.divide(total, count, out=np.full(n, np.nan), where=count > 0)
    stats = {"pair_rows": int(pair_scores.num_rows), "pair_rows_used": int(found.sum()),
             "pair_rows_other_sources": int((~found).sum()), "sources_with_pairs": int((count > 0).sum())}
    return hardness, stats


def read_id_list(path: str | os.PathLike[str]) -> list[str]:
    """Source ids from a list file: a CSV with a ``source_id`` column, or one id a line (the first
    whitespace-separated field, so official ``uid fs path`` lines work); blank and ``#`` lines are skipped."""
    if not os.path.isfile(path):
        raise SourceSelectionError(f"source_select.list.path '{path}' does not exist; give a file of source ids")
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    first = next((ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")), "")
    if "source_id" in [c.strip() for c in first.split(",")]:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, comment=None)
        df.columns = [c.strip() for c in df.columns]
        ids = [s.strip() for s in df["source_id"].tolist()]
        blank = [i for i, s in enumerate(ids) if not s]
        if blank:
            raise SourceSelectionError(f"list '{path}' row {blank[0] + 2}: empty source_id")
        return ids
    return [ln.split()[0] for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


# --------------------------------------------------------------------------------------------------- speech table


@dataclass
class SpeechTable:
    """Manifest speech rows (sorted by source_id) joined with their scores: labels, scores, hours, hardness."""

    ids: np.ndarray
    frame: pd.DataFrame
    """Per row: source_id, path, sr, corpus, speaker, language, duration_sec, status, band, hardness, score columns."""
    pool_table: pa.Table
    stats: dict[str, Any]


def speech_table(manifest: pd.DataFrame, scores: pa.Table, params: SourceSelectParams,
                 hardness: np.ndarray | None) -> SpeechTable:
    """Join manifest speech with its scores (``hardness`` per manifest speech row in source_id order, or None)."""
    m = manifest[manifest["kind"] == SPEECH].sort_values("source_id", kind="stable").reset_index(drop=True)
    ids = m["source_id"].to_numpy(dtype=object)
    s = kind_rows(scores, SPEECH)
    pos = _index_in(ids, s["source_id"])
    scored = pos >= 0
    n = len(m)
    aligned = len(s) == n and bool((pos == np.arange(n)).all())  # the usual case: both sorted, every source scored
    srows = None if aligned else pa.array(np.where(scored, pos, 0))

    def score_col(col: str, fill: Any) -> np.ndarray:
        if col not in s.column_names or not len(s):
            return np.full(n, fill, dtype=object if isinstance(fill, str) else np.float64)
        vals = (s[col] if aligned else s[col].take(srows)).to_numpy(zero_copy_only=False)
        if isinstance(fill, str):
            vals = np.asarray(vals, dtype=object)
            return np.where(scored, vals, fill)
        return np.where(scored, vals.astype(np.float64), fill)

    status = score_col("status", "unscored")
    status = np.where(pd.isna(status), "missing", status).astype(object)
    dur_scored = score_col("duration_sec", np.nan)
    duration = np.where(np.isfinite(dur_scored), dur_scored, m["duration_sec"].to_numpy(dtype=np.float64))
    bw = score_col("ref_bandwidth_hz", np.nan)
    band = band_of(bw, params.bandwidth_edges_hz, params.band_labels())
    loss = hardness if hardness is not None else np.full(n, np.nan)
    frame = pd.DataFrame({
        "source_id": ids, "path": m["path"].to_numpy(dtype=object), "sr": m["sr"].to_numpy(dtype=np.int64),
        "corpus": _labels(m["corpus"]), "speaker": m["speaker"].to_numpy(dtype=object),
        "language": _labels(m["language"]), "duration_sec": duration, "status": status, "band": band,
        "hardness": loss,
    })
    numeric = [c for c in s.column_names if c not in frame.columns and c not in POOL_RESERVED
               and (pa.types.is_floating(s.schema.field(c).type) or pa.types.is_integer(s.schema.field(c).type))]
    for col in numeric:
        frame[col] = score_col(col, np.nan)
    table = pa.table({
        "utt_id": pa.array(ids, type=pa.string()),
        "path": pa.array(frame["path"], type=pa.string()),
        "duration_sec": pa.array(duration),
        "sr": pa.array(frame["sr"]),
        "language": pa.array(frame["language"], type=pa.string()),
        "corpus": pa.array(frame["corpus"], type=pa.string()),
        "band": pa.array(band, type=pa.string()),
        "speaker": pa.array(frame["speaker"], type=pa.string()),
        "distortion": pa.array(np.full(n, SPEECH, dtype=object), type=pa.string()),
        "status": pa.array(status, type=pa.string()),
        "loss_proxy": pa.array(np.nan_to_num(loss, nan=0.0) if hardness is None else loss),
        **{c: pa.array(frame[c].to_numpy(dtype=np.float64)) for c in numeric if c not in ("sr", "duration_sec")},
    })
    if EMBED_COLUMN not in s.column_names:
        raise SourceSelectionError(f"source scores lack the '{EMBED_COLUMN}' column the selection ranks, balances and "
                                   "deduplicates speech by; enable the embedding scorer of the source_score stage")
    if aligned:
        emb = s[EMBED_COLUMN]
    elif len(s):
        emb = s[EMBED_COLUMN].take(srows)
        emb = pc.if_else(pa.array(scored), emb, pa.nulls(n, type=emb.type))
    else:
        emb = pa.nulls(n, type=pa.list_(pa.float32()))
    table = table.append_column(EMBED_COLUMN, emb)
    n_in_manifest = int(len(np.unique(pos[scored])))
    stats = {"manifest_rows": n, "manifest_hours": float(m["duration_sec"].sum()) / SECONDS_PER_HOUR,
             "scored_rows": int(scored.sum()), "unscored_rows": int((~scored).sum()),
             "scores_rows_not_in_manifest": int(len(s) - n_in_manifest)}
    return SpeechTable(ids=ids, frame=frame, pool_table=table, stats=stats)


def _labels(col: pd.Series) -> np.ndarray:
    return col.astype(object).where(col.notna(), MISSING_LABEL).to_numpy(dtype=object)


def _index_in(values: np.ndarray, lookup: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Position of each value in ``lookup`` (-1 where absent)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    pos = pc.index_in(pa.array(values, type=pa.string()), value_set=pc.cast(lookup, pa.string()))
    return pos.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)


# --------------------------------------------------------------------------------------------------- caps


def _group_codes(labels: np.ndarray) -> np.ndarray:
    return pd.factorize(pd.Series(labels, dtype=object), sort=True)[0].astype(np.int64)


def prefix_cap(group: np.ndarray, cap: np.ndarray | float, utility: np.ndarray, tiebreak: np.ndarray,
               hours: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Rows of ``mask`` within each group's best rows (utility desc, tiebreak, row) holding at most ``cap`` hours."""
    rows = np.flatnonzero(mask)
    rows = rows[np.lexsort((rows, tiebreak[rows], -utility[rows], group[rows]))]
    g = group[rows]
    cum = np.cumsum(hours[rows])
    start = np.concatenate(([0.0], cum))[np.searchsorted(g, g, side="left")]
    limit = cap[g] if isinstance(cap, np.ndarray) else cap
    out = np.zeros(len(mask), dtype=bool)
    out[rows[cum - start <= limit + HOURS_EPS]] = True
    return out


def trim_shares(hours: np.ndarray, order: np.ndarray, rows: np.ndarray, codes: Mapping[str, np.ndarray],
                shares: Mapping[str, float]) -> np.ndarray:
    """Selected ``rows`` to drop so that each value of every capped column holds at most its share of the
    selected hours: the latest picks (``order``) of a value above its share go first, until nothing changes."""
    kept = np.ones(len(rows), dtype=bool)
    h = hours[rows]
    perms = {col: np.lexsort((order[rows], codes[col][rows])) for col in shares}
    while True:
        changed = False
        for col, share in shares.items():
            perm = perms[col]
            total = float(h[kept].sum())
            g = codes[col][rows][perm]
            hk = np.where(kept[perm], h[perm], 0.0)
            cum = np.cumsum(hk)
            start = np.concatenate(([0.0], cum))[np.searchsorted(g, g, side="left")]
            bad = kept[perm] & (cum - start > share * total + HOURS_EPS)
            if bad.any():
                kept[perm[bad]] = False
                changed = True
        if not changed:
            return rows[~kept]


# --------------------------------------------------------------------------------------------------- main


def select_sources(params: SourceSelectParams, manifest: pd.DataFrame, scores: pa.Table,
                   pair_scores: pa.Table | None = None, id_list: Sequence[str] | None = None,
                   where: Mapping[str, str] | None = None) -> SourceSelection:
    """The whole source selection on in-memory inputs (the CLI reads the files): see the module docstring.

    ``where`` names the inputs in messages (``scores``, ``pair_scores``, ``list``).
    """
    where = {"scores": "<table>", "pair_scores": "<table>", "list": "<list>", **(where or {})}
    check_scores(scores, where["scores"])
    warnings: list[SelectionWarning] = []
    speech_ids = manifest.loc[manifest["kind"] == SPEECH, "source_id"].sort_values(kind="stable").to_numpy(object)
    hardness, hard_stats = _hardness(params, pair_scores, speech_ids, where["pair_scores"], warnings)
    table = speech_table(manifest, scores, params, hardness)
    if params.name == LIST_SELECTOR:
        if id_list is None:
            raise SourceSelectionError("source_select.name is list but no list was given (source_select.list.path)")
        speech, list_stats = _select_list(params, table, id_list, where["list"], warnings)
        sel, quiet = None, []
        speech_metrics: dict[str, Any] = {}
    else:
        sel, speech, cap_stats, quiet = _select_speech(params, table, where["scores"], warnings)
        list_stats = None
        speech_metrics = build_metrics(sel, None, tail_stats(sel))
    noise, noise_stats = _pass_through(params, manifest, scores, warnings)
    for w in warnings:
        log.warning("%s", w.message)
    warnings.extend(quiet)
    frame = pd.concat([speech, noise], ignore_index=True)
    frame["order"] = np.arange(len(frame), dtype=np.int64)
    metrics = _metrics(params, table, speech, sel, speech_metrics, hard_stats, list_stats, noise_stats,
                       None if sel is None else cap_stats, warnings)
    details = {"hours_per_speaker": _hours_by(speech, ["corpus", "speaker"]),
               "warnings": [{"code": w.code, "count": w.count, "message": w.message} for w in warnings]}
    if sel is not None:
        details["stop"] = finite_or_none(sel.fill.stop)
    return SourceSelection(frame=frame, metrics=metrics, details=details, selection=sel)


def _hardness(params: SourceSelectParams, pair_scores: pa.Table | None, ids: np.ndarray, where: str,
              warnings: list[SelectionWarning]) -> tuple[np.ndarray | None, dict[str, Any]]:
    if params.hardness == "none" or pair_scores is None or params.name == LIST_SELECTOR:
        if params.name == "cvar":
            raise SourceSelectionError(
                "source_select.name = cvar ranks speech sources by the loss of the pairs simulated from them: give "
                "--pair-scores <root>/scores/train_scores.parquet, or pick another source_select.name")
        return None, {"source": "none"}
    hardness, stats = pair_hardness(pair_scores, ids, where)
    has = np.isfinite(hardness)
    if not has.any():
        raise SourceSelectionError(
            f"pair scores '{where}': no status-ok speech pair has a speech_uid among the {len(ids)} speech sources of "
            "the manifest; were they simulated from another source manifest? (source_select.hardness: pairs)")
    fallback = float(hardness[has].mean())
    stats.update({"source": "pairs", "fallback_rule": "mean hardness of the sources with pairs",
                  "fallback_value": fallback, "fallback_sources": int((~has).sum())})
    if (~has).any():
        warnings.append(SelectionWarning(
            "hardness_fallback", f"{int((~has).sum())} of {len(ids)} speech sources have no scored pair in '{where}'; "
            f"their hardness is the mean of the others ({fallback:.4g})", int((~has).sum())))
    return np.where(has, hardness, fallback), stats


def _select_speech(params: SourceSelectParams, table: SpeechTable, where: str, warnings: list[SelectionWarning]
                   ) -> tuple[Selection, pd.DataFrame, dict[str, Any], list[SelectionWarning]]:
    sp = params.select_params()
    selector = build(sp.name, params=sp, filters=None, quotas=sp.quotas)
    try:
        pool = selector.load(table.pool_table)
    except PoolError as exc:
        raise SourceSelectionError(_rename(str(exc), where)) from exc
    pool.source = where
    rows = _index_in(pool.utt_id, pa.array(table.ids, type=pa.string()))
    labels = table.frame.iloc[rows]
    spk = labels["speaker"].to_numpy(dtype=object)
    no_speaker = pd.isna(spk)
    speaker_key = np.where(no_speaker, "\x00" + labels["source_id"].to_numpy(dtype=object),
                           labels["corpus"].to_numpy(dtype=object) + "\x00" + np.where(no_speaker, "", spk))
    codes = {"speaker": _group_codes(speaker_key), "corpus": _group_codes(labels["corpus"].to_numpy(object)),
             "language": _group_codes(labels["language"].to_numpy(object))}
    caps = params.caps
    shares = caps.shares()
    cap_stats: dict[str, Any] = {"pre_limited_rows": 0, "pre_limited_hours": 0.0}

    def limit(pool: Pool, eligible: np.ndarray, ranking: Any) -> np.ndarray:
        keep = eligible.copy()
        if caps.max_hours_per_speaker is not None:
            keep &= prefix_cap(codes["speaker"], caps.max_hours_per_speaker, ranking.utility, ranking.tiebreak,
                               pool.hours, keep)
        reach = min(sp.K_hours, float(pool.hours[keep].sum()))
        for col, share in shares.items():
            present = len(np.unique(codes[col][keep]))
            if present * share < 1.0 - 1e-12:
                raise SourceSelectionError(
                    f"source_select.caps.max_share_per_{col} = {share:g} cannot hold: the eligible speech has only "
                    f"{present} {col} value(s), whose shares cannot sum to 1; raise the cap to at least "
                    f"{1.0 / present:.4g} or set it to null")
            keep &= prefix_cap(codes[col], share * reach, ranking.utility, ranking.tiebreak, pool.hours, keep)
        if not keep.any():
            raise SourceSelectionError(
                f"source_select.caps (max_hours_per_speaker = {caps.max_hours_per_speaker}, shares {shares or 'none'}) "
                "leave no eligible speech source: each speaker's or value's first source is longer than its cap; "
                "raise the caps or set them to null")
        cap_stats["pre_limited_rows"] = int((eligible & ~keep).sum())
        cap_stats["pre_limited_hours"] = float(pool.hours[eligible & ~keep].sum())
        return keep

    if caps.max_hours_per_speaker is not None or shares:
        selector.limit = limit
    try:
        sel = selector.run(pool)
    except PoolError as exc:
        raise SourceSelectionError(_rename(str(exc), where)) from exc
    trimmed = np.zeros(0, dtype=np.int64)
    if shares:
        chosen = np.flatnonzero(sel.selected)
        trimmed = trim_shares(pool.hours, sel.fill.order, chosen, codes, shares)
        if len(trimmed) == len(chosen):
            raise SourceSelectionError(
                f"source_select.caps ({', '.join(f'max_share_per_{c} = {s:g}' for c, s in shares.items())}) admit no "
                "selection: some value's sources are too few to balance the others; raise or null the caps")
        sel.fill.state[trimmed] = UNDECIDED
        sel.fill.order[trimmed] = -1
    trimmed_hours = float(pool.hours[trimmed].sum())
    cap_stats.update({"trimmed_rows": int(len(trimmed)), "trimmed_hours": trimmed_hours})
    if len(trimmed):
        w = SelectionWarning("cap_trimmed", f"the share caps dropped {len(trimmed)} selected source(s), "
                             f"{trimmed_hours:.4f} h, after the greedy so that every share holds of the final total",
                             int(len(trimmed)))
        sel.warnings.append(w)
        warnings.append(w)
    for w in sel.warnings:  # logged by the selector already; named after this section in the outputs
        w.message = _rename(w.message, where)
    logged = [w for w in sel.warnings if w.code != "cap_trimmed"]
    picked = sel.frame()
    prow = _index_in(picked["utt_id"].to_numpy(dtype=object), pa.array(table.ids, type=pa.string()))
    out = _carry(table.frame.iloc[prow].reset_index(drop=True), SPEECH)
    out["hours"] = picked["hours"].to_numpy()
    out["reason"] = picked["reason"].to_numpy(dtype=object)
    out["slice"] = picked["slice"].to_numpy(dtype=object)
    out["in_quota"] = picked["in_quota"].to_numpy()
    return sel, out, cap_stats, logged


def _rename(message: str, where: str) -> str:
    return message.replace("'<table>'", f"'{where}'").replace("select.", "source_select.").replace(
        "source_source_select.", "source_select.")


def _carry(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    out = pd.DataFrame({"kind": np.full(len(frame), kind, dtype=object), "source_id": frame["source_id"].to_numpy()})
    for col in ("corpus", "speaker", "language", "sr", "path", "duration_sec", "band", *CARRIED_SCORES, "hardness"):
        out[col] = frame[col].to_numpy() if col in frame.columns else np.nan
    return out


def _select_list(params: SourceSelectParams, table: SpeechTable, id_list: Sequence[str], where: str,
                 warnings: list[SelectionWarning]) -> tuple[pd.DataFrame, dict[str, Any]]:
    listed = pd.Series(list(id_list), dtype=object)
    dup = listed.duplicated()
    unique = listed[~dup].to_numpy(dtype=object)
    pos = _index_in(unique, pa.array(table.ids, type=pa.string()))
    missing = unique[pos < 0]
    found = pos[pos >= 0]
    status = table.frame["status"].to_numpy(dtype=object)[found]
    failed = (status != STATUS_OK) & (status != "unscored")
    usable = found[~failed]
    hours = table.frame["duration_sec"].to_numpy(dtype=np.float64)[usable] / SECONDS_PER_HOUR
    fits = np.cumsum(hours) <= params.K_hours + HOURS_EPS
    n_take = int(np.argmin(fits)) if not fits.all() else len(usable)  # the longest prefix of the list that fits
    take = usable[:n_take]
    listed_hours = float(hours.sum())
    stats = {
        "path": where, "listed_ids": int(len(listed)), "duplicate_ids": int(dup.sum()),
        "found": int(len(found)), "missing": int(len(missing)), "missing_examples": missing[:EXAMPLES].tolist(),
        "failed_status": int(failed.sum()),
        "failed_status_examples": table.ids[found[failed]][:EXAMPLES].tolist(),
        "usable_hours": listed_hours, "over_budget": bool(listed_hours > params.K_hours + HOURS_EPS),
        "kept": n_take, "kept_hours": float(hours[:n_take].sum()),
        "reproduced_exactly": bool(n_take == len(usable)),  # every listed source found and usable is kept
    }
    if len(missing):
        warnings.append(SelectionWarning(
            "list_missing", f"{len(missing)} of {len(unique)} ids of list '{where}' name no speech source of the "
            f"manifest, e.g. {', '.join(missing[:5].tolist())}", int(len(missing))))
    if failed.any():
        warnings.append(SelectionWarning(
            "list_failed_status", f"{int(failed.sum())} listed sources were not scored ok (status "
            f"{', '.join(sorted(set(status[failed].tolist())))}) and are left out, e.g. "
            f"{', '.join(table.ids[found[failed]][:5].tolist())}", int(failed.sum())))
    if stats["over_budget"]:
        warnings.append(SelectionWarning(
            "list_over_budget", f"list '{where}' holds {listed_hours:.4f} h, over source_select.K_hours = "
            f"{params.K_hours:g}: kept its first {n_take} of {len(usable)} sources ({stats['kept_hours']:.4f} h), in "
            "list order", int(len(usable) - n_take)))
    out = _carry(table.frame.iloc[take].reset_index(drop=True), SPEECH)
    out["hours"] = hours[:n_take]
    out["reason"] = LIST_SELECTOR
    out["slice"] = ""
    out["in_quota"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out, stats


def _pass_through(params: SourceSelectParams, manifest: pd.DataFrame, scores: pa.Table,
                  warnings: list[SelectionWarning]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every noise, wind-noise and RIR source that passes its filters, in (kind, source_id) order."""
    parts, stats = [], {}
    for kind in PASS_KINDS:
        m = manifest[manifest["kind"] == kind].sort_values("source_id", kind="stable").reset_index(drop=True)
        s = kind_rows(scores, kind)
        pos = _index_in(m["source_id"].to_numpy(dtype=object), s["source_id"])
        scored = pos >= 0
        take = pa.array(np.where(scored, pos, 0))
        status = (np.where(scored, np.asarray(s["status"].fill_null("missing").take(take).to_numpy(
            zero_copy_only=False), dtype=object), "unscored") if len(s) else np.full(len(m), "unscored", object))
        bad_status = scored & (status != STATUS_OK)
        speech = np.zeros(len(m), dtype=bool)
        if kind in NOISE_KINDS and params.noise.drop_with_speech and NOISE_HAS_SPEECH_COLUMN in s.column_names and len(s):
            flag = s[NOISE_HAS_SPEECH_COLUMN].fill_null(False).take(take).to_numpy(zero_copy_only=False).astype(bool)
            speech = scored & ~bad_status & flag
        keep = ~bad_status & ~speech
        hours = m["duration_sec"].to_numpy(dtype=np.float64) / SECONDS_PER_HOUR
        ids = m["source_id"].to_numpy(dtype=object)
        stats[kind] = {
            "rows": int(len(m)), "hours": float(hours.sum()), "kept_rows": int(keep.sum()),
            "kept_hours": float(hours[keep].sum()), "dropped_has_speech": int(speech.sum()),
            "dropped_has_speech_examples": ids[speech][:EXAMPLES].tolist(),
            "dropped_status": int(bad_status.sum()), "unscored_kept": int((keep & ~scored).sum()),
        }
        if speech.any():
            warnings.append(SelectionWarning(
                "noise_has_speech", f"{int(speech.sum())} {kind} source(s) contain speech and are dropped, e.g. "
                f"{', '.join(ids[speech][:5].tolist())}", int(speech.sum())))
        if (keep & ~scored).any():
            warnings.append(SelectionWarning(
                "unscored_kept", f"{int((keep & ~scored).sum())} {kind} source(s) have no row in the source scores "
                "and are kept unfiltered", int((keep & ~scored).sum())))
        frame = pd.DataFrame({"source_id": ids[keep], "path": m["path"].to_numpy(object)[keep],
                              "sr": m["sr"].to_numpy(np.int64)[keep], "corpus": _labels(m["corpus"])[keep],
                              "speaker": m["speaker"].to_numpy(object)[keep],
                              "language": _labels(m["language"])[keep],
                              "duration_sec": m["duration_sec"].to_numpy(np.float64)[keep]})
        out = _carry(frame, kind)
        out["hours"] = hours[keep]
        out["reason"] = np.where(scored[keep], "kept", "unscored")
        out["slice"] = ""
        out["in_quota"] = pd.array([pd.NA] * len(out), dtype="boolean")
        parts.append(out)
    return pd.concat(parts, ignore_index=True), stats


def _hours_by(frame: pd.DataFrame, cols: list[str]) -> dict[str, float]:
    """Hours per value (``/``-joined); a source without a speaker label is its own speaker (``<source_id>``)."""
    if frame.empty:
        return {}
    labels = frame[cols].astype(object)
    if "speaker" in cols:
        labels["speaker"] = labels["speaker"].where(labels["speaker"].notna(), "<" + frame["source_id"] + ">")
    labels = labels.fillna(MISSING_LABEL).astype(str)
    keys = labels[cols[0]]
    for col in cols[1:]:
        keys = keys + "/" + labels[col]
    return {str(k): float(v) for k, v in frame["hours"].groupby(keys.to_numpy(), sort=True).sum().items()}


def _metrics(params: SourceSelectParams, table: SpeechTable, speech: pd.DataFrame, sel: Selection | None,
             speech_metrics: dict[str, Any], hard_stats: dict[str, Any], list_stats: dict[str, Any] | None,
             noise_stats: dict[str, Any], cap_stats: dict[str, Any] | None,
             warnings: list[SelectionWarning]) -> dict[str, Any]:
    total = float(speech["hours"].sum())
    per_speaker = _hours_by(speech, ["corpus", "speaker"])
    caps = params.caps
    by_corpus = _hours_by(speech, ["corpus"])
    by_language = _hours_by(speech, ["language"])
    max_share = {col: (max(v.values()) / total if v and total > 0 else 0.0)
                 for col, v in (("corpus", by_corpus), ("language", by_language))}
    max_spk = max(per_speaker.values()) if per_speaker else 0.0
    cap_fit = {
        "max_hours_per_speaker": {"limit": caps.max_hours_per_speaker, "max_observed": max_spk,
                                  "holds": caps.max_hours_per_speaker is None
                                  or max_spk <= caps.max_hours_per_speaker + HOURS_EPS},
        "max_share_per_corpus": {"limit": caps.max_share_per_corpus, "max_observed": max_share["corpus"],
                                 "holds": caps.max_share_per_corpus is None
                                 or max_share["corpus"] * total <= caps.max_share_per_corpus * total + HOURS_EPS},
        "max_share_per_language": {"limit": caps.max_share_per_language, "max_observed": max_share["language"],
                                   "holds": caps.max_share_per_language is None
                                   or max_share["language"] * total <= caps.max_share_per_language * total + HOURS_EPS},
    }
    if cap_stats is not None:
        cap_fit.update(cap_stats)
    if list_stats is None and params.name == LIST_SELECTOR:
        list_stats = {}
    counts: dict[str, int] = {}
    for w in warnings:
        counts[w.code] = counts.get(w.code, 0) + w.count
    metrics = {
        "strategy": params.name,
        "budget_hours": params.K_hours,
        "hours_selected": total,
        "budget_share_used": total / params.K_hours,
        "within_budget": bool(total <= params.K_hours + HOURS_EPS),
        "n_selected": int(len(speech)),
        "hours_per_corpus": by_corpus,
        "hours_per_language": by_language,
        "hours_per_band": _hours_by(speech, ["band"]),
        "speakers": {"selected": len(per_speaker), "max_hours": max_spk,
                     "max_hours_speaker": max(per_speaker, key=lambda k: (per_speaker[k], k)) if per_speaker else None,
                     "at_cap": (sum(1 for v in per_speaker.values() if v >= caps.max_hours_per_speaker - 1e-6)
                                if caps.max_hours_per_speaker is not None else None)},
        "caps": cap_fit,
        "speech_pool": table.stats,
        "hardness": hard_stats,
        "list": list_stats,
        "noise": noise_stats,
        "selection": speech_metrics or None,
        "warnings": counts,
    }
    if sel is not None:
        gate = params.quality_gate
        metrics["gate"] = {"column": gate.column, "min_score": gate.min_score, "gated_rows": int(sel.gated.sum()),
                           "gated_hours": float(sel.pool.hours[sel.gated].sum()),
                           "eligible_rows": int(sel.eligible.sum()),
                           "eligible_hours": float(sel.pool.hours[sel.eligible].sum())}
    return finite_or_none(metrics)
