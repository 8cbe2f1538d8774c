"""Grouping patch embeddings into regions: learned group tokens or soft k-means.

Both return a soft assignment ``(B, N, G)`` of the ``N`` patches of each image to ``G`` groups
(rows sum to 1); a region's embedding is the assignment-weighted mean of its patches,
L2-normalised (:func:`region_embeddings`), and the hard region map is the argmax over groups.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def region_embeddings(patches: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
    """``(B, G, D)`` L2-normalised ``sum_n a_ng p_n / sum_n a_ng`` of patches ``(B, N, D)``."""
    weights = assignment / assignment.sum(dim=1, keepdim=True).clamp_min(1e-6)
    return F.normalize(torch.einsum("bng,bnd->bgd", weights, patches), dim=-1)


class GroupTokens(nn.Module):
    """GroupViT-style learned group tokens in the joint space.

    The ``G`` tokens first read the image (one cross-attention step: each token adds the
    softmax-weighted mean of the patches, through a linear map that starts at zero), then
    every patch is softly assigned to the tokens by a softmax over its cosine to each token.

    Args:
        num_groups: G.
        dim: D, the joint-space width.
        temperature: softmax temperature of both attentions.
    """

    def __init__(self, num_groups: int, dim: int, temperature: float) -> None:
        super().__init__()
        self.tokens = nn.Parameter(torch.randn(num_groups, dim) * dim ** -0.5)
        self.update = nn.Linear(dim, dim)
        nn.init.zeros_(self.update.weight)
        nn.init.zeros_(self.update.bias)
        self.temperature = temperature

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Assignment ``(B, N, G)`` of L2-normalised patches ``(B, N, D)``."""
        tokens = F.normalize(self.tokens, dim=-1).to(patches.dtype)
        read = torch.softmax(torch.einsum("gd,bnd->bgn", tokens, patches) / self.temperature, dim=-1)
        queries = F.normalize(tokens + self.update(torch.einsum("bgn,bnd->bgd", read, patches)), dim=-1)
        return torch.softmax(torch.einsum("bnd,bgd->bng", patches, queries) / self.temperature, dim=-1)


def kmeans_assignment(patches: torch.Tensor, num_groups: int, iterations: int, temperature: float) -> torch.Tensor:
    """Soft spherical k-means of patches ``(B, N, D)``: assignment ``(B, N, G)`` (no gradient).

    Centres start at ``G`` evenly spaced patches (deterministic); each iteration assigns by a
    softmax of cosines / ``temperature`` and moves the centres to the weighted means.
    """
    with torch.no_grad():
        n = patches.shape[1]
        start = torch.linspace(0, n - 1, min(num_groups, n), device=patches.device).round().long()
        centres = patches[:, start]
        for _ in range(iterations):
            assignment = torch.softmax(torch.einsum("bnd,bgd->bng", patches, centres) / temperature, dim=-1)
            centres = region_embeddings(patches, assignment)
        return torch.softmax(torch.einsum("bnd,bgd->bng", patches, centres) / temperature, dim=-1)
