"""Where tensors go: CUDA when present, CPU otherwise (``KQA_DEVICE`` overrides)."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
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
