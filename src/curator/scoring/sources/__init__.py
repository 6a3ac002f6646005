"""Source-level scoring: one row per source recording (speech, noise, wind noise, RIR) -> source_scores.parquet.

Speech sources get the pair scorer's reference-quality columns (same scorers, options and names: DNSMOS,
bandwidth, VAD ratio, clipping, optional DistillMOS/NISQA, the embedding, ``ref_quality``); noise and wind
noise get light scorers (active level, bandwidth, speech presence, clipping) and ``noise_has_speech`` (a
noise clip with speech in it is a defect); RIRs get RT60 and DRR. Columns: ``contract/source_scores.py``.
Entry point ``python -m curator.scoring.sources`` (:mod:`.cli`); library use :func:`.runner.score_sources`.
"""
