"""Probe-model loss (reference-model / RHO-LOSS style): the held-out loss of a small enhancement model.

K-fold cross-fitting: the pool is split into ``probe.folds`` seeded folds; for each fold a small mask
estimator is trained on a random subset of the other folds and scores the fold's utterances, so every
utterance's ``probe_loss`` comes from a model that never saw it. HIGHER = HARDER for a model of this size.
"""
