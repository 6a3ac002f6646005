"""BSRNN: output length == input length at every URGENT rate, band layout, parameter counts, validation."""

from __future__ import annotations

import pytest
import torch

from curator.audio import SAMPLE_RATES
from curator.config import ConfigError
from curator.training.models import MODELS, build_model
from curator.training.models.bsrnn import band_bins

TINY = {"num_channels": 8, "num_layers": 1}


@pytest.fixture(scope="module")
def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("bsrnn", TINY).eval()


@pytest.mark.parametrize("sr", SAMPLE_RATES)
def test_output_length_equals_input_length(tiny_model: torch.nn.Module, sr: int) -> None:
    n = int(0.37 * sr) + 3  # not a multiple of the hop
    with torch.no_grad():
        y = tiny_model(torch.randn(2, n), sr)
    assert y.shape == (2, n)
    assert torch.isfinite(y).all()


def test_lower_rates_use_a_prefix_of_the_bands() -> None:
    starts, widths = band_bins([[4000, 200], [7000, 500], [21000, 2000], [24000, 3000]], 0.02, 48000)
    assert len(starts) == 34 and starts[-1] + widths[-1] == 481  # 960-point STFT at 48 kHz
    assert widths[:2] == [5, 4]  # first band holds DC plus 200 Hz
    assert sum(s < 81 for s in starts) == 20  # 8 kHz (81 bins) uses the twenty 200 Hz bands


def test_official_size_matches_the_baseline() -> None:
    n = sum(p.numel() for p in build_model("bsrnn", {}).parameters())
    assert 25e6 < n < 40e6  # the baseline reports ~32-36 M for 196 channels x 6 layers


def test_unsupported_rate_is_a_clear_error(tiny_model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="11025 Hz"):
        tiny_model(torch.randn(1, 4000), 11025)  # 20 ms is 220.5 samples


@pytest.mark.parametrize("options, key", [
    ({"band_layout": [[4000, 200], [8000, 300]]}, "band_layout"),
    ({"num_channels": 0}, "num_channels"),
    ({"hop_seconds": 0.05}, "hop_seconds"),
    ({"num_chanels": 8}, "did you mean 'num_channels'"),
])
def test_bad_options_name_the_key(options: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_model("bsrnn", options)


def test_registry_lists_bsrnn() -> None:
    assert "bsrnn" in MODELS.names()
    with pytest.raises(KeyError, match="valid choices: bsrnn"):
        MODELS.get("bsrn")
