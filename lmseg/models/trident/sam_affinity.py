"""Global aggregation with SAM's last-block attention filtered by value similarity (Trident step 9).

Per head h, with SAM's last-block attention ``W_h`` (valid rows/columns, not renormalised) and
values ``v_h``::

    C_h     = cos(v_h,i, v_h,j)
    thr_i   = cos_fac * mean over heads and keys of C_h(i, :)
    thr_i   = neg_replacement if thr_i < 0 and not refine_neg_cos
    thr_i   = min(thr_i, max_thresh)
    A       = row_normalise( mean_h( W_h * [C_h > thr_i] ) )

Then ``F' = A @ F`` for every channel of the spliced CLIP map (:func:`aggregate`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sam_affinity(
    attention: torch.Tensor,
    values: torch.Tensor,
    *,
    cos_fac: float,
    refine_neg_cos: bool = True,
    neg_replacement: float = 0.6,
    max_thresh: float = 0.9,
) -> torch.Tensor:
    """The filtered, head-averaged, row-normalised SAM attention.

    Args:
        attention: ``(heads, L, L)`` softmax weights (rows: queries), L valid tokens.
        values: ``(heads, L, head_dim)`` the same block's values.
        cos_fac: threshold factor (1.2 default; 0 keeps every positive-similarity pair).
        refine_neg_cos: False replaces negative thresholds by ``neg_replacement``.
        neg_replacement: see above (0.6).
        max_thresh: cap on the threshold (0.9).

    Returns:
        ``(L, L)`` float32, rows sum to 1 (the diagonal is always kept, since ``C_ii = 1 >
        max_thresh``).
    """
    w = attention.float()
    v = F.normalize(values.float(), dim=-1)
    cos = v @ v.transpose(-1, -2)  # (heads, L, L)
    thresh = cos_fac * cos.mean(dim=0, keepdim=True).mean(dim=-1, keepdim=True)  # (1, L, 1)
    if not refine_neg_cos:
        thresh = torch.where(thresh < 0, torch.full_like(thresh, neg_replacement), thresh)
    thresh = thresh.clamp(max=max_thresh)
    kept = torch.where(cos > thresh, w, torch.zeros_like(w)).mean(dim=0)
    return kept / kept.sum(dim=-1, keepdim=True)


def aggregate(affinity: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``F' = A @ F``.

    Args:
        affinity: ``(L, L)`` with ``L = h * w``.
        features: ``(1, C, h, w)`` map on the SAM valid grid.

    Returns:
        ``(L, C)`` aggregated tokens, row-major, in ``features``' dtype.
    """
    _, channels, h, w = features.shape
    tokens = features.reshape(channels, h * w).transpose(0, 1)
    return affinity.to(tokens.dtype) @ tokens
