"""The built-in fusion strategies: concatenation + MLP, gated fusion, cross-attention."""

from __future__ import annotations

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
        keys = tokens + self.type_embedding.unsqueeze(0)
        query = self.query.expand(tokens.shape[0], -1, -1) + tokens[:, :1] * 0  # [B, 1, H]
        attended, weights = self.attention(query, keys, keys, key_padding_mask=~mask,
                                           need_weights=True, average_attn_weights=True)
        pooled = (tokens * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        fused = self.out(torch.cat([attended.squeeze(1), pooled], dim=-1))
        return fused, masked_shares(weights.squeeze(1), mask)


@hookimpl
def register_fusions(register):  # type: ignore[no-untyped-def]
    register(FusionSpec("concat", ConcatFusion, "concatenation + MLP"))
    register(FusionSpec("gated", GatedFusion, "learned per-modality gates"))
    register(FusionSpec("cross-attention", CrossAttentionFusion, "a learned query attends over modality tokens"))
