"""DNSMOS on a cuda device: the CUDA provider when onnxruntime has it, else the CPU, said out loud."""

from __future__ import annotations

import logging

import onnxruntime as ort
import pytest

from curator.scoring.scorers import dnsmos


@pytest.fixture(autouse=True)
def _fresh_warning():
    dnsmos._warn_cpu_fallback.cache_clear()
    yield
    dnsmos._warn_cpu_fallback.cache_clear()


def test_cuda_without_the_gpu_build_runs_on_cpu_and_warns_once(monkeypatch, caplog):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["AzureExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger=dnsmos.__name__):
        assert dnsmos.onnx_providers("cuda") == ["CPUExecutionProvider"]
        assert dnsmos.onnx_providers("cuda") == ["CPUExecutionProvider"]
    warned = [r.getMessage() for r in caplog.records if "DNSMOS runs on the CPU" in r.getMessage()]
    assert len(warned) == 1 and "onnxruntime-gpu" in warned[0]


def test_cuda_provider_first_when_installed_and_cpu_untouched(monkeypatch, caplog):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with caplog.at_level(logging.WARNING, logger=dnsmos.__name__):
        assert dnsmos.onnx_providers("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
        assert dnsmos.onnx_providers("cpu") == ["CPUExecutionProvider"]
    assert not caplog.records
