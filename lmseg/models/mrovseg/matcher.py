"""Hungarian matching of query predictions to ground-truth masks (Mask2Former's matcher).

For one image with Q queries and T target masks, the cost of pairing query i with target j::

    C[i, j] = w_class * (-p_i[c_j]) + w_mask * BCE(m_i, t_j) + w_dice * dice(m_i, t_j)

``p_i`` the softmax of the query's class logits (with "no object"), ``c_j`` the target's
class; BCE and dice are computed on K points drawn uniformly (the same points for every pair).
The assignment minimising the total cost is :func:`scipy.optimize.linear_sum_assignment`'s.
The K points are drawn for every image, one without target masks included (as Mask2Former's
``HungarianMatcher``), so the random stream is the same as Mask2Former's.
"""

from __future__ import annotations

import torch

from lmseg.models.mrovseg.points import point_sample


def pairwise_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(Q, K)`` logits, ``(T, K)`` binary targets -> ``(Q, T)`` mean binary cross-entropy over K."""
    pos = torch.nn.functional.softplus(-logits)  # -log sigmoid(x)
    neg = torch.nn.functional.softplus(logits)  # -log(1 - sigmoid(x))
    return (pos @ targets.T + neg @ (1.0 - targets).T) / logits.shape[1]


def pairwise_dice(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``(Q, K)`` logits, ``(T, K)`` targets -> ``(Q, T)`` dice loss ``1 - (2 p.t + 1) / (|p| + |t| + 1)``."""
    p = logits.sigmoid()
    return 1.0 - (2.0 * p @ targets.T + 1.0) / (p.sum(-1)[:, None] + targets.sum(-1)[None, :] + 1.0)


def match_costs(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor, masks: torch.Tensor,
                coords: torch.Tensor, weights: tuple[float, float, float]) -> torch.Tensor:
    """The ``(Q, T)`` cost matrix of one image.

    Args:
        class_logits: ``(Q, N + 1)``.
        mask_logits: ``(Q, h, w)``.
        labels: ``(T,)`` int64 class indices.
        masks: ``(T, H, W)`` binary target masks (any resolution).
        coords: ``(1, K, 2)`` point coordinates in [0, 1].
        weights: ``(w_class, w_mask, w_dice)``.
    """
    w_class, w_mask, w_dice = weights
    prob = class_logits.float().softmax(-1)[:, labels]
    out = point_sample(mask_logits.float(), coords)
    tgt = point_sample(masks.float(), coords)
    return -w_class * prob + w_mask * pairwise_bce(out, tgt) + w_dice * pairwise_dice(out, tgt)


@torch.no_grad()
def hungarian_match(class_logits: torch.Tensor, mask_logits: torch.Tensor, labels: torch.Tensor,
                    masks: torch.Tensor, *, num_points: int, weights: tuple[float, float, float],
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Optimal one-to-one assignment for one image.

    Returns:
        ``(query_index, target_index)``: two int64 tensors of length ``min(Q, T)``.
    """
    from scipy.optimize import linear_sum_assignment  # here: segmenting never needs scipy

    # drawn before the empty check, as Mask2Former's matcher does: an image without target masks
    # consumes the same random numbers, so the stream (and every later draw) follows its order
    coords = torch.rand(1, num_points, 2, device=mask_logits.device, generator=generator)
    if labels.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty
    cost = match_costs(class_logits, mask_logits, labels, masks, coords, weights)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64)
