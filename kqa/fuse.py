"""Fuse stage: the interface fusion-strategy plugins implement.

A fusion module receives one feature vector per modality (``text``, ``image``, ``kg``: the
knowledge retrieved for the question) and a presence mask, and returns the fused question
vector together with each modality's share of it. The shares are what ``kqa ask`` reports as
"what each modality contributed"; each strategy defines them in its own terms (gate values,
attention weights, contribution norms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn


@dataclass
class FusionSpec:
    """A registered fusion strategy: ``factory(dims, hidden) -> Fusion``."""

    name: str
    factory: Callable[[dict[str, int], int], "Fusion"]
    description: str = ""


class Fusion(nn.Module):
    """Base class: modalities are processed in sorted-name order."""

    def __init__(self, dims: dict[str, int], hidden: int) -> None:
        super().__init__()
        self.modalities = sorted(dims)
        self.dims = dict(dims)
        self.hidden = hidden

    def forward(self, features: dict[str, torch.Tensor],
                present: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``features[m]``: [B, dims[m]] (zeros where absent); ``present[m]``: [B] bool.
        Returns (fused [B, hidden], shares [B, len(modalities)] summing to 1 per row)."""
        raise NotImplementedError


def masked_shares(weights: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Normalise non-negative per-modality weights over the modalities present."""
    weights = weights * present.float()
    return weights / weights.sum(-1, keepdim=True).clamp(min=1e-9)
