"""Per-utterance scoring: reference quality, input difficulty, embeddings and ``loss_proxy`` -> scores Parquet.

Entry points: ``python -m curator.scoring`` (:mod:`curator.scoring.cli`), :func:`curator.scoring.runner.score_rows`
for library use, :data:`curator.scoring.base.SCORERS` to add a scorer.
"""
