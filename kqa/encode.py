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

    @abstractmethod
    def encode_batch(self, items: Sequence[Any]) -> np.ndarray:
        """One batch → [len(items), dim] float32, L2-normalised."""

    def tower(self, size: int) -> "ImageTower | None":
        """A trainable copy of an image encoder's network at ``size``×``size`` inputs, for
        fine-tuning on a KG's entity images (:mod:`kqa.recognise`); None where the encoder
        cannot be fine-tuned (its frozen vectors are used instead)."""
        return None

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


class ImageTower(torch.nn.Module):
    """Pixels → features, trainable (see :meth:`Encoder.tower`).

    Images are kept as ``uint8`` [3, size, size] tensors (:meth:`load`, a quarter of the
    memory of floats: a recogniser trains on thousands of them); :meth:`prepare` turns a batch
    of those into what the network expects. Subclasses set ``dim`` and implement
    :meth:`prepare` and :meth:`forward`.

    A tower whose first layers stay frozen also splits :meth:`forward` into :meth:`frozen`
    and :meth:`trainable`: training then runs the frozen layers once per photo and keeps
    their (small) output, instead of recomputing them every epoch.
    """

    dim: int

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def load(self, image: Any) -> torch.Tensor:
        """[3, size, size] uint8 RGB for one image (path, bytes or PIL image), squashed."""
        from PIL import Image

        from kqa.images import open_image

        rgb = open_image(image).resize((self.size, self.size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(rgb, dtype=np.uint8).copy()).permute(2, 0, 1)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] uint8 → the network's float input."""
        raise NotImplementedError

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # prepared [B, 3, S, S] → [B, dim]
        raise NotImplementedError

    def frozen(self, images: torch.Tensor) -> torch.Tensor:
        """[B, 3, S, S] uint8 → the output of the layers that never train (by default none:
        the pixels themselves, kept as uint8). Called without gradients."""
        return images

    def trainable(self, frozen: torch.Tensor) -> torch.Tensor:
        """What :meth:`frozen` returned → [B, dim], through the layers that train."""
        return self(self.prepare(frozen))


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
