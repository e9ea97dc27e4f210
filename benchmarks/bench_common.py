"""What the benchmark scripts share: device description, CUDA-only rows, row filters, the JSON record.

Imported by the scripts in this folder (run as `python benchmarks/bench_X.py`, so this folder is on
sys.path); not part of the vaelens package.
"""

from __future__ import annotations

import datetime
import platform
import sys

import torch

from vaelens.io import atomic_write_json

NEEDS_CUDA = "needs CUDA"
"""What a CUDA-only row shows (and records) when the benchmark runs on another device."""

DENSE_BF16_PEAK_TFLOPS = (("H100 PCIe", 756.0), ("H100 NVL", None), ("H100", 989.0), ("H200", 989.0),
                          ("A100", 312.0))
"""Dense (no sparsity) bf16 tensor-core peak in TFLOP/s from NVIDIA's data sheets, keyed by a substring of
torch.cuda.get_device_name; first match wins, so "H100 PCIe" comes before the SXM part's "NVIDIA H100 80GB
HBM3". None: a part whose peak is not in this table (its figures are printed without a fraction)."""


class NeedsCuda(Exception):
    """A row that only means something on a GPU (CUDA graphs, bf16 tensor cores) was asked for elsewhere."""


def require_cuda(device: torch.device) -> None:
    if device.type != "cuda":
        raise NeedsCuda(NEEDS_CUDA)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def device_info(device: torch.device) -> dict:
    """Where the figures come from: device, its name, CPU, threads, versions, date (UTC)."""
    info = {"device": str(device), "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
            "python_version": platform.python_version(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)}
    if device.type == "cuda":
        info["device_name"] = torch.cuda.get_device_name(device)
        info["cuda_version"] = torch.version.cuda
    try:
        import vaelens

        info["vaelens_version"] = vaelens.__version__
    except AttributeError:
        pass
    return info


def describe_device(info: dict) -> str:
    name = f", {info['device_name']}" if "device_name" in info else ""
    return (f"device: {info['device']}{name} ({info['cpu']}, {info['torch_threads']} threads); "
            f"torch {info['torch_version']}; {info['date']}")


def peak_bf16_tflops(device: torch.device) -> float | None:
    """The device's dense bf16 peak (TFLOP/s) from DENSE_BF16_PEAK_TFLOPS, or None (unknown GPU, CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in DENSE_BF16_PEAK_TFLOPS if key in name), None)


def selected_rows(requested: list[str] | None, known: list[str]) -> list[str]:
    """The rows to run, in `known` order; a clear error for a name that is not a row."""
    if not requested:
        return list(known)
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise SystemExit(f"unknown row(s) {', '.join(unknown)}; choose from: {', '.join(known)}")
    return [name for name in known if name in requested]


def write_json(path: str | None, info: dict, table: list[dict], **extra) -> None:
    """Write the device description and the table (one dict per row) atomically to `path` (if given)."""
    if path:
        atomic_write_json(path, {**info, **extra, "rows": table})
        print(f"wrote {path}")
