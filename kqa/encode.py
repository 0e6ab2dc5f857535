"""Encode stage: modality encoders behind one small interface.

Encoders are plugins (``register_encoders``). An encoder declares its modality, name, version
and dimension, and returns L2-normalised float32 vectors; text encoders also expose token-level
states (the answer model attends over question tokens). Each encoder is built once per process
and shared (models are large and loading them is slow).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from kqa.device import default_device
from kqa.errors import KqaError

Progress = Callable[[str, int, int], None]

DEFAULT_ENCODERS = {"text": "minilm", "image": "efficientnet-lite0"}


@dataclass
class EncoderSpec:
    """How to build an encoder; ``factory(**options)`` is called lazily."""

    name: str
    modality: str
    factory: Callable[..., "Encoder"]
    description: str = ""
    takes_path: bool = False  # selected as ``name:/path/to/model``


@dataclass
class TokenStates:
    """Token-level text encoding: ``states`` [B, T, D], ``mask`` [B, T] (1 = real token),
    ``offsets`` per text as (start, end) character spans (special tokens get (0, 0)),
    ``pooled`` [B, D] the normalised sentence vectors."""

    states: torch.Tensor
    mask: torch.Tensor
    offsets: list[list[tuple[int, int]]]
    pooled: torch.Tensor


class Encoder(ABC):
    """A modality encoder. Subclasses set the four identity attributes."""

    name: str
    version: str
    modality: str
    dim: int
    batch_size: int = 64

    def __init__(self) -> None:
        self.device = default_device()

    @property
    def identity(self) -> dict[str, Any]:
        """What indexes and models record, and check before reuse."""
        return {"name": self.name, "version": self.version, "modality": self.modality, "dim": self.dim}

    #: image encoders that can also return a grid of local features (the answer model learns
    #: to pool them, attending to the entity rather than the scene around it) set this > 0
    region_dim: int = 0

    @abstractmethod
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        """One batch → [len(items), dim] float32, L2-normalised."""

    def encode_with_regions(self, items: Sequence[Any]) -> tuple[np.ndarray, np.ndarray | None]:
        """One batch → (global vectors, [B, P, region_dim] float16 local features or None),
        from a single forward pass where the encoder supports regions."""
        return self.encode_batch(items), None

    def encode(self, items: Sequence[Any], batch_size: int | None = None,
               progress: Progress | None = None, stage: str = "encode") -> np.ndarray:
        """Encode any number of items in batches (order kept)."""
        size = batch_size or self.batch_size
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        for start in range(0, len(items), size):
            out[start:start + size] = self.encode_batch(items[start:start + size])
            if progress:
                progress(stage, min(start + size, len(items)), len(items))
        return out


class TextEncoder(Encoder):
    """A text encoder that can also return token states."""

    modality = "text"

    @abstractmethod
    def encode_tokens(self, texts: Sequence[str]) -> TokenStates:
        """Token states for a batch of texts (kept on the encoder's device)."""

    def encode(self, items: Sequence[Any], batch_size: int | None = None,
               progress: Progress | None = None, stage: str = "encode") -> np.ndarray:
        """Length-sorted batches: padding is what makes short-string encoding slow."""
        order = sorted(range(len(items)), key=lambda i: len(items[i]))
        sorted_vecs = super().encode([items[i] for i in order], batch_size, progress, stage)
        out = np.empty_like(sorted_vecs)
        out[order] = sorted_vecs
        return out


# -- the process-wide encoder cache -------------------------------------------------------------
_cache: dict[str, Encoder] = {}
_cache_lock = threading.Lock()


def parse_encoder_ref(ref: str) -> tuple[str, dict[str, Any]]:
    """``minilm`` → ("minilm", {}); ``hf:/models/x`` → ("hf", {"path": "/models/x"})."""
    name, sep, arg = ref.partition(":")
    return (name, {"path": arg}) if sep else (name, {})


def get_encoder(ref: str | None, modality: str = "text") -> Encoder:
    """The shared encoder for ``ref`` (default: the modality's default encoder)."""
    from kqa.plugins import get_plugins

    ref = ref or DEFAULT_ENCODERS.get(modality)
    if not ref:
        raise KqaError(f"no default encoder for modality {modality!r}; pass one by name")
    with _cache_lock:
        if ref in _cache:
            return _cache[ref]
        name, options = parse_encoder_ref(ref)
        spec = get_plugins().encoder_spec(name)
        if spec.modality != modality:
            raise KqaError(f"encoder {name!r} encodes {spec.modality}, not {modality}")
        if spec.takes_path and "path" not in options:
            raise KqaError(f"encoder {name!r} needs a model folder: use {name}:/path/to/model")
        try:
            encoder = spec.factory(**options)
        except KqaError:
            raise
        except Exception as exc:  # a failing encoder plugin is reported with its name
            raise KqaError(f"encoder {ref!r} failed to load: {type(exc).__name__}: {exc}") from exc
        _cache[ref] = encoder
        return encoder


def clear_encoders() -> None:
    with _cache_lock:
        _cache.clear()


@dataclass
class EncoderUse:
    """Which encoder a model or index used (recorded in manifests and configs)."""

    text: dict[str, Any]
    image: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
