"""Where tensors go: CUDA when present, CPU otherwise (``KQA_DEVICE`` overrides)."""

from __future__ import annotations

import os

import torch


def configure_threads() -> None:
    """``KQA_THREADS`` caps torch's CPU threads (on a busy machine fewer threads than cores
    can be several times faster; the default is torch's, one per core)."""
    wanted = os.environ.get("KQA_THREADS")
    if wanted and wanted.isdigit() and int(wanted) > 0 and torch.get_num_threads() != int(wanted):
        torch.set_num_threads(int(wanted))


def default_device() -> torch.device:
    configure_threads()
    # cuBLAS is only reproducible with a fixed workspace, read once when it starts: set before
    # any CUDA work so that ``--deterministic`` training can be bit-identical there
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    wanted = os.environ.get("KQA_DEVICE")
    if wanted:
        return torch.device(wanted)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def autocast(device: torch.device):  # type: ignore[no-untyped-def]
    """Mixed precision (bf16: no loss scaling needed) for training's forward passes on CUDA,
    a no-op on CPU, where bf16 was slower for this model's small matrices.
    ``KQA_AUTOCAST=cpu`` turns it on for CPU too, so tests can run the same code path (which
    operations run in bf16 under autocast is decided per operation, the same on both)."""
    if device.type == "cuda" or os.environ.get("KQA_AUTOCAST") == device.type:
        return torch.autocast(device.type, dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()
