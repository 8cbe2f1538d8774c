"""Tolerances of the numerical tests, derived from the arithmetic rather than from one CPU's rounding.

Two computations of the same quantity that differ only in rounding (another summation order:
a reference written with other operations, a batch against single items, chunks against one
pass, another CPU's SIMD width, blocking or thread count) differ by rounding errors that IEEE
754 arithmetic bounds. With unit roundoff ``u`` (float64 ``2**-53``, float32 ``2**-24``,
float16 ``2**-11``), a sum or inner product of ``n`` terms computed in any order is within
``gamma(n) = n u / (1 - n u)`` times the sum of the terms' magnitudes of the exact value
(Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002, eq. 3.5). That
worst case assumes every rounding error has its maximum size and the same sign; the errors
observed, on any CPU, follow the probabilistic bound ``lam * sqrt(n) * u`` (Higham and Mary,
"A New Approach to Probabilistic Rounding Error Analysis", SIAM J. Sci. Comput. 41(5), 2019:
it holds with probability at least ``1 - 2 n exp(-lam**2 (1 - u)**2 / 2)``; ``lam = 6`` leaves
a failure probability below ``3e-8 n`` per reduction).

:func:`fp32_tolerance` turns this into ``assert_close`` arguments: the two sides' errors add
(factor 2), so do the errors of ``depth`` successive reductions (to first order, for the
well-conditioned steps of these tests: linear maps, softmax, normalisation), and ``scale`` is
the size of the terms' magnitudes relative to the compared values. Each test states its
``terms``, ``depth`` and ``scale`` and the error it measured (the margin), so that a tolerance
can be checked against the computation it covers.

Exact comparisons (``rtol=0, atol=0``) need no tolerance: the same operations on the same
values in the same order give the same bits on every IEEE machine (what such a test checks is
that two code paths run the same operations).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch only where a module is measured: the metric tests run without it
    import torch

__all__ = ["LAMBDA", "TINY_CLIP_TEXT", "TINY_LMSEG", "U16", "U32", "U64", "UBF16", "bfloat16_bound", "fp32_tolerance",
           "half_precision_bound",
           "longest_reduction", "reduction_bound"]

U16 = 2.0**-11
U32 = 2.0**-24
U64 = 2.0**-53
#: bfloat16's unit roundoff (8 significand bits).
UBF16 = 2.0**-8

#: The probabilistic bound's multiplier (see the module docstring).
LAMBDA = 6.0


def reduction_bound(terms: int, u: float = U32, lam: float = LAMBDA) -> float:
    """Relative error of one sum or inner product of ``terms`` terms in a format of unit
    roundoff ``u``: ``lam * sqrt(terms) * u`` (of the sum of the terms' magnitudes)."""
    return lam * math.sqrt(terms) * u


def fp32_tolerance(terms: int, depth: int = 1, scale: float = 1.0, u: float = U32) -> dict[str, float]:
    """``assert_close`` / ``assert_allclose`` keyword arguments for two float32 computations of the
    same quantity: ``rtol = 2 * depth * reduction_bound(terms)``, ``atol = rtol * scale``
    (``u=U64`` for two float64 computations).

    Args:
        terms: the longest reduction of the computation (a matrix product's inner dimension, a
            softmax's length, a mean's count).
        depth: reductions in a chain (errors of each feed the next; first order).
        scale: the terms' magnitudes relative to the compared values (1 for values of the size
            of their terms; more where large terms cancel to small values).
        u: the unit roundoff of the format both sides compute in (:data:`U32`, :data:`U64`).
    """
    rtol = 2 * depth * reduction_bound(terms, u)
    return {"rtol": rtol, "atol": rtol * scale}


def longest_reduction(*modules: torch.nn.Module) -> int:
    """The largest fan-in of the linear maps and convolutions of ``modules`` (their longest
    inner product), for :func:`reduction_bound`."""
    import torch

    longest = 1
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Linear):
                longest = max(longest, layer.in_features)
            elif isinstance(layer, torch.nn.modules.conv._ConvNd):
                longest = max(longest, layer.in_channels // layer.groups * math.prod(layer.kernel_size))
    return longest


def half_precision_bound(fp32_error: float, terms: int) -> float:
    """The error of a computation whose float32 parts run in float16 instead, from its measured
    float32 error (both against a float64 reference).

    ``fp32_error / U32`` is the computation's own amplification of rounding errors (measured, so
    that no guess about its depth or conditioning enters). In float16 every rounding is ``U16 /
    U32 = 2**13`` times larger; a CPU that accumulates float16 products in float32 (x86 before
    AVX512-FP16) adds no more, one that accumulates in float16 (AVX512-FP16, AMX-FP16) turns each
    reduction's error from about ``u`` into up to ``sqrt(terms) u`` (the probabilistic bound without
    its ``lam``: the float32 run's own accumulation error is already in the measurement). So:
    ``fp32_error / U32 * U16 * sqrt(terms)``, for the longest float16 reduction ``terms``.
    """
    return fp32_error / U32 * U16 * math.sqrt(terms)


def bfloat16_bound(fp32_error: float) -> float:
    """The error of a computation run under bfloat16 autocast, from its measured float32 error
    (both against a float64 reference): ``fp32_error / U32 * UBF16``.

    As in :func:`half_precision_bound`, ``fp32_error / U32`` is the computation's measured
    amplification of rounding errors, and each rounding is ``UBF16 / U32 = 2**16`` times larger
    in bfloat16. There is no accumulation term: a product of two bfloat16 values is exact in
    float32, and every CPU kernel of the kind accumulates in float32 (AVX512-BF16 ``vdpbf16ps``,
    AMX-BF16, oneDNN's and ATen's bfloat16 matrix products and reductions); autocast leaves
    other steps in float32 or rounds their float32 results once.
    """
    return fp32_error / U32 * UBF16


#: Class embeddings of the tiny test CLIP (``lmseg-tiny-ViT``: text width 32, 2 blocks, MLP 128,
#: 77 tokens) computed two ways (other batches, other template sets per call): the longest
#: reduction is the MLP's 128-term fan-in; the chain is 2 blocks x 6 products (q/k/v, scores,
#: values, projection, 2 MLP layers) + the final projection + the L2 norm, the template mean and
#: the norm of the mean (and the blend's norm) = 16 reductions.
TINY_CLIP_TEXT = fp32_tolerance(terms=128, depth=16)

#: ``lmseg_tiny`` from image to class probabilities computed two ways (views batched or one at a
#: time, classes in one chunk or chunk by chunk): the longest reduction is SAM's 3 x 3 neck
#: convolution over 256 channels (2,304 terms); the chain is CLIP's image tower (patch embedding,
#: ln_pre, 3 blocks x 6 products, ln_post, projection: 22), the cost volume (normalisation,
#: cosine: 2), the cost embedding (1), 2 aggregation layers x 3 blocks x 6 products (36), the
#: decoder's 4 convolutions and head (5) = 66 reductions (SAM's shorter branch, 16, joins at the
#: fusion). The sigmoid only shrinks errors (slope <= 1/4).
TINY_LMSEG = fp32_tolerance(terms=2304, depth=66)
