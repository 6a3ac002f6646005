"""Plug-in checks of the ``train`` section (called by :func:`curator.config.load_section`)."""

from __future__ import annotations

from curator.config import check_choice
from curator.training.backends import BACKENDS
from curator.training.models import model_options
from curator.training.params import TrainParams


def validate(params: TrainParams) -> TrainParams:
    """``train.backend`` must be registered and ``train.model`` a registered model with valid options."""
    check_choice("train.backend", params.backend, BACKENDS.names())
    model_options(params.model.name, params.model.options)
    return params
