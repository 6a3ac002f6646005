"""Per-utterance scoring: reference quality, input difficulty, embeddings, composites -> a scores Parquet.

Columns of ``data/scores/train_scores.parquet`` (one row per manifest row, sorted by ``utt_id``):

- carried from the manifest: ``utt_id, path, clean_path, duration_sec, sr, language, distortion, speaker,
  split``; ``status`` is ``ok`` or why the pair was not scored (scores NaN, embedding null);
- reference (clean target) quality: ``ref_dnsmos_sig/bak/ovrl`` and ``mos_dns`` (= OVRL),
  ``ref_bandwidth_hz``, ``ref_bandwidth_ratio``, ``ref_speech_ratio``, ``ref_clip_ratio``
  (``ref_distillmos`` with the ``distillmos`` scorer), composite ``ref_quality`` (HIGHER = CLEANER);
- input difficulty (noisy vs clean): ``in_sisdr, in_snr, in_estoi, in_pesq``, composite ``loss_proxy``
  (HIGHER = HARDER); the probe stage's ``probe_holdout_loss`` or ``probe_reducible_loss`` too when a
  ``score.loss_proxy`` weight mixes it in;
- ``ssl_embed``: fixed-size float32 list from the configured embedding backend.

The file's metadata holds the schema version and every setting the numbers depend on.
Entry points: ``python -m curator.scoring`` (:mod:`.cli`), ``python -m curator.scoring.probe``,
:func:`.runner.score_rows` for library use; add a scorer with a module in :mod:`.scorers` decorated by
``@SCORERS.register``, an embedding backend with one in :mod:`.embeddings` (``@EMBEDDERS.register``).
"""
