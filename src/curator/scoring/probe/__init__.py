"""Probe-model losses of a small enhancement model, cross-fitted, offered as two rankings named for what they are.

K-fold cross-fitting: the pool is split into ``probe.folds`` seeded folds; for each fold a small mask
estimator is trained on a random subset of the other folds and scores the fold's utterances, so every
utterance's ``probe_holdout_loss`` comes from a model that never saw it: HIGHER = HARDER for a model of this
size, and also higher for rows whose target cannot be predicted (noisy or wrong references).

``probe.ranking: reducible_loss`` adds RHO-LOSS's ranking (Mindermann et al., 2022): a current-model probe per
fold, trained on the fold itself for ``probe.current_steps`` steps, and ``probe_reducible_loss`` = its loss
(``probe_current_loss``) minus the held-out (irreducible) loss, low for noisy-target rows that held-out loss
ranks high. ``score.loss_proxy.weights`` names the column it mixes in.
"""
