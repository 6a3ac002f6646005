"""The score section fails before any work on a bad key, scorer, option or loss-proxy column."""

from __future__ import annotations

import pytest

from curator.config import ConfigError

from .conftest import score_params


def test_committed_section_is_valid():
    p = score_params()
    assert "embedding" in p.scorers and p.options["embedding"].backend == "logmel"


@pytest.mark.parametrize(("override", "message"), [
    ({"scorers": "[sisdr, nope]"}, r"score.scorers\[1\].*choose one of"),
    ({"executor": "dask"}, r"score.executor.*local"),
    ({"shard_size": 0}, r"score.shard_size"),
    ({"options.embedding.backend": "wavlm"}, r"embedding.backend.*logmel"),
    ({"scorers": "[dnsmos, bandwidth, sisdr, embedding]"}, r"in_estoi.*no enabled scorer"),
    ({"scorers": "[sisdr, estoi, pesq, embedding]"}, r"ref_quality.weights.ref_dnsmos_ovrl.*no enabled scorer"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        score_params(**override)
