"""The built-in fusion strategies: concatenation + MLP, gated fusion, cross-attention."""

from __future__ import annotations

import math

import torch
from torch import nn

from kqa.fuse import Fusion, FusionSpec, masked_shares
from kqa.hookspecs import hookimpl


class _Projected(Fusion):
    """Shared first step: each modality projected to ``hidden`` and normalised."""

    def __init__(self, dims: dict[str, int], hidden: int, dropout: float = 0.1) -> None:
        super().__init__(dims, hidden)
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(dims[m], hidden), nn.LayerNorm(hidden), nn.Dropout(dropout))
            for m in self.modalities})

    def projected(self, features: dict[str, torch.Tensor],
                  present: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """([B, M, hidden] with absent modalities zeroed, [B, M] presence)."""
        mask = torch.stack([present[m] for m in self.modalities], dim=1)
        tokens = torch.stack([self.project[m](features[m]) for m in self.modalities], dim=1)
        return tokens * mask.unsqueeze(-1).float(), mask


class ConcatFusion(_Projected):
    """Concatenate the projected modalities (plus presence flags) and mix them with an MLP.
    A modality's share is the norm of its projected vector relative to the others'."""

    def __init__(self, dims: dict[str, int], hidden: int) -> None:
        super().__init__(dims, hidden)
        count = len(self.modalities)
        self.mlp = nn.Sequential(nn.Linear(count * hidden + count, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden), nn.LayerNorm(hidden))

    def forward(self, features, present):  # type: ignore[no-untyped-def]
        tokens, mask = self.projected(features, present)
        fused = self.mlp(torch.cat([tokens.flatten(1), mask.float()], dim=-1))
        return fused, masked_shares(tokens.norm(dim=-1), mask)


class GatedFusion(_Projected):
    """Learned per-modality gates (conditioned on all modalities): a gated sum. The shares
    are the normalised gates."""

    def __init__(self, dims: dict[str, int], hidden: int) -> None:
        super().__init__(dims, hidden)
        count = len(self.modalities)
        self.gate = nn.Linear(count * hidden + count, count)
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))

    def forward(self, features, present):  # type: ignore[no-untyped-def]
        tokens, mask = self.projected(features, present)
        gates = torch.sigmoid(self.gate(torch.cat([tokens.flatten(1), mask.float()], dim=-1)))
        shares = masked_shares(gates, mask)
        fused = self.out((shares.unsqueeze(-1) * tokens).sum(1))
        return fused, shares


class CrossAttentionFusion(_Projected):
    """A learned query attends over modality tokens (with modality-type embeddings); the
    shares are the attention weights averaged over heads."""

    def __init__(self, dims: dict[str, int], hidden: int, heads: int = 4) -> None:
        super().__init__(dims, hidden)
        self.type_embedding = nn.Parameter(torch.randn(len(self.modalities), hidden) * 0.02)
        self.query = nn.Parameter(torch.randn(1, 1, hidden) * 0.02)
        self.attention = nn.MultiheadAttention(hidden, heads, batch_first=True, dropout=0.0)
        self.out = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.GELU(), nn.LayerNorm(hidden))

    def forward(self, features, present):  # type: ignore[no-untyped-def]
        tokens, mask = self.projected(features, present)
        attended, weights = self.attend(tokens + self.type_embedding.unsqueeze(0), mask)
        pooled = (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        fused = self.out(torch.cat([attended, pooled], dim=-1))
        return fused, masked_shares(weights, mask)

    def attend(self, keys: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned query's multi-head attention over the modality tokens ([B, M, H] keys,
        [B, M] presence): ``self.attention``'s weights and result, computed directly. One
        query over two or three tokens is a handful of small products; the general module's
        argument checks and reshapes cost more than the arithmetic when answering one question
        (0.4 ms of ``ask``)."""
        mha = self.attention
        size, count, hidden = keys.shape
        heads = mha.num_heads
        width = hidden // heads
        query = nn.functional.linear(self.query[0], mha.in_proj_weight[:hidden], mha.in_proj_bias[:hidden])
        key, value = nn.functional.linear(keys, mha.in_proj_weight[hidden:], mha.in_proj_bias[hidden:]) \
            .view(size, count, 2, heads, width).unbind(2)  # [B, M, heads, width] each
        logits = torch.einsum("hw,bmhw->bhm", query.view(heads, width), key) / math.sqrt(width)
        weights = torch.softmax(logits.masked_fill(~mask.unsqueeze(1), float("-inf")), dim=-1)
        attended = torch.einsum("bhm,bmhw->bhw", weights, value).reshape(size, hidden)
        return mha.out_proj(attended), weights.mean(1)


@hookimpl
def register_fusions(register):  # type: ignore[no-untyped-def]
    register(FusionSpec("concat", ConcatFusion, "concatenation + MLP"))
    register(FusionSpec("gated", GatedFusion, "learned per-modality gates"))
    register(FusionSpec("cross-attention", CrossAttentionFusion, "a learned query attends over modality tokens"))
