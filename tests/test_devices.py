"""Tests for vaelens.devices.resolve_device."""

from __future__ import annotations

import pytest
import torch

from vaelens.devices import resolve_device


def test_auto_picks_cuda_exactly_when_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


def test_named_devices_and_device_objects_pass_through():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_cuda_request_without_cuda_names_the_setting(monkeypatch):
    # Simulates a CPU-only machine, so the test means the same with or without a GPU.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(RuntimeError, match=r"train\.device=cuda:1 but CUDA is not available.*train\.device=cpu"):
        resolve_device("cuda:1", "train.device")
    with pytest.raises(RuntimeError, match="device=cuda but CUDA is not available"):
        resolve_device("cuda")


def test_unknown_device_name_is_a_clear_error():
    with pytest.raises(ValueError, match="--device='gpu' is not a device; use cpu, cuda, cuda:N or auto"):
        resolve_device("gpu", "--device")
