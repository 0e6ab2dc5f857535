"""Where tensors go: CUDA when present, CPU otherwise (``KQA_DEVICE`` overrides)."""

from __future__ import annotations

import ctypes
import os
import platform

import torch

# glibc's <malloc.h> parameters for mallopt(3)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_KEPT_BLOCK = 1 << 30  # blocks up to 1 GiB come from the heap, not a mapping of their own
_KEPT_TOP = (1 << 31) - 1  # free memory at the heap's top is handed back only past 2 GiB
_memory_kept: bool | None = None


def configure_threads() -> None:
    """``KQA_THREADS`` caps torch's CPU threads (on a busy machine fewer threads than cores
    can be several times faster; the default is torch's, one per core)."""
    wanted = os.environ.get("KQA_THREADS")
    if wanted and wanted.isdigit() and int(wanted) > 0 and torch.get_num_threads() != int(wanted):
        torch.set_num_threads(int(wanted))


def keep_freed_memory() -> bool:
    """Keep the memory torch frees for its next tensors instead of handing it back to the
    operating system; whether it is kept (once per process; ``KQA_KEEP_MEMORY=0`` leaves the C
    library's defaults).

    glibc serves a block above its mmap threshold (128 KB, rising with the blocks freed to at
    most 32 MB) with a mapping of its own and unmaps it when freed, and trims the heap's free
    top past 128 KB. A training loop makes and frees the same large activations every batch,
    so each batch faulted its memory in anew, page by page: training the countries recogniser
    for one epoch took 24 M page faults and 42 s of kernel time in 155 s; with blocks up to
    1 GiB taken from the heap and the heap kept, 1 M and 5 s in 132 s, the same losses to the
    last digit, peak memory 2.51 → 2.55 GB (docs/results.md). Raising the trim threshold alone
    is worse than nothing: it also pins the mmap threshold at 128 KB (168 M faults, 303 s).
    A no-op where the C library is not glibc; worker processes forked later inherit it."""
    global _memory_kept
    if _memory_kept is None:
        _memory_kept = False
        if os.environ.get("KQA_KEEP_MEMORY", "1") != "0" and platform.libc_ver()[0] == "glibc":
            try:
                libc = ctypes.CDLL("libc.so.6")
                # the mmap threshold first: setting either one ends glibc's dynamic threshold
                _memory_kept = bool(libc.mallopt(_M_MMAP_THRESHOLD, _KEPT_BLOCK)
                                    and libc.mallopt(_M_TRIM_THRESHOLD, _KEPT_TOP))
            except (OSError, AttributeError):
                pass
    return _memory_kept


def default_device() -> torch.device:
    configure_threads()
    keep_freed_memory()
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
