"""The contract between stages: every file one stage writes and a later stage reads, defined once here.

- :mod:`curator.contract.data`: the ``data`` section of params.yaml (dataset, root, filters) and the paths
  every stage derives from it (manifests, external data), so ``data.dataset`` is the one source of truth.
- :mod:`curator.contract.manifest`: the manifest (JSONL, one utterance a line), its schema version.
- :mod:`curator.contract.filters`: the one implementation of ``data.filters`` (scoring, probe, selection).
- :mod:`curator.contract.flags`: per-augmentation flags (every kind applied to a row, beside its primary label).
- :mod:`curator.contract.scores`: the scores table (Parquet), its columns and schema version, lazy reads.
- :mod:`curator.contract.curated`: the curated list (CSV + ``_meta.json`` sidecar) and its schema version.

Each file carries its schema version and every reader checks it, failing with a message that names the file,
the version found and the stage to rerun. The source ids of a pair (``speech_uid``, ``noise_id``,
``rir_id``) and its corpus (``source``) travel from the manifest to the scores table to the curated list.
This package imports nothing from the stage packages, so any stage can import it without import circles.
"""
