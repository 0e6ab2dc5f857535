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


def image_batch(device: torch.device) -> int:
    """How many images a convolutional network should take at once on ``device``.

    On a CPU, a large batch is slower per image, not faster: the early layers' activations
    of 64 photos at 160 px are ≈ 150 MB a layer, far past the caches, and the memory-bound
    steps between convolutions (padding, batch norm, activation) then wait on RAM. Measured on
    2 cores (EfficientNet-Lite0; docs/results.md): its frozen layers 13–16 ms a photo in
    batches of 64, 4.2 ms in batches of 8; the whole network at 160 px 13.5 ms a photo in 16s,
    8.5 ms in 8s, 10–12 ms in 4s; at 224 px 24–26 ms an image in 16s, 17–18 ms in 8s. A GPU
    wants large batches."""
    return 64 if device.type == "cuda" else 8
