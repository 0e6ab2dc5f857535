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
    """Mixed precision on CUDA, a no-op context on CPU."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    import contextlib

    return contextlib.nullcontext()
