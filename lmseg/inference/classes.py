"""Large vocabularies: chunks of classes, early rejection of absent classes, the chunked label map.

Every tensor of a predictor whose size grows with the number of classes ``N`` (cost volume,
aggregation, decoder, score maps at the image's size, softmax over the vocabulary) is worked
through in chunks of classes, so that peak memory is bounded by :attr:`ClassBudget.chunk_elements`
instead of growing with the vocabulary:

* :func:`class_chunks`: consecutive slices of classes, each holding at most ``chunk_elements``
  elements of the largest per-class tensor of a step (at least one class per chunk);
  :func:`aligned_chunks` does the same for rows that belong to classes (Trident's queries);
* :func:`chunked_softmax`: a softmax over all rows (classes or queries) at every position,
  computed chunk by chunk with a streaming log-sum-exp;
* :func:`candidate_scores` and :func:`select_candidates`: the early-rejection rule (below);
* :class:`LabelReduction`: the label map as a running argmax over the chunks and, only when
  asked for, the ``(N, H, W)`` scores (rejected classes all zero);
  :class:`ReducingPredictor`: a predictor's ``scores_tensor``, ``logits`` and ``predict`` from
  its one run of the protocol into a :class:`LabelReduction`.

The rejection rule (``inference.max_classes = K``; 0 turns it off, and ``K >= N`` changes
nothing, the cheap pass is not even run)::

    s_c  = max over tokens t of  max over rows r of class c of  softmax_r(T cos(f_t, e_r))
    kept = the K classes with the largest s_c (ties: the lower class index), in class order

``f_t`` are CLIP's dense image tokens in the joint space (every token of every view of the
image), ``e_r`` the text rows (one per class, or one per query of a class with synonyms), ``T``
the method's CLIP temperature. Only the kept classes reach the expensive dense stage; the
rejected ones get probability 0 and never win a pixel. Why this rule:

* the **max over tokens** keeps a class that wins a small region (a mean or CLIP's pooled
  image embedding would let it drown in the rest of the image; small objects are exactly what
  a large vocabulary adds);
* the **softmax over the vocabulary at each token** scores a class by how well it competes
  where it is best, so broad classes whose cosine is mildly high everywhere ("thing",
  "object") do not crowd out the class that actually wins a region (raw cosines would); it is
  the zero-shot classifier CLIP's dense features already are, as in ERR-Seg's per-image
  compact vocabulary and SED's per-pixel category rejection;
* it costs one ``T x N x D`` product, in chunks: well under a percent of LMSeg's aggregation
  of the same N classes.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lmseg.errors import LmsegError
from lmseg.inference.image_input import ImageInput
from lmseg.inference.segmenter import Segmentation, VocabularyInput, as_vocabulary
from lmseg.vocab import Vocabulary

__all__ = ["DEFAULT_CHUNK_ELEMENTS", "REJECTION_RULE", "ClassBudget", "LabelReduction", "ReducingPredictor",
           "aligned_chunks", "candidate_scores", "check_max_classes", "chunked_softmax", "class_chunks", "class_rows", "rejection_record",
           "select_candidates"]

#: 2^27 elements (512 MiB of float32) per class-dependent tensor: ADE-150 fits one chunk of
#: every method at its published input size on the CPU; raise it on a large GPU.
DEFAULT_CHUNK_ELEMENTS = 1 << 27

#: The rule, as recorded in every protocol record.
REJECTION_RULE = ("keep the max_classes classes with the largest max over the image's CLIP tokens of their "
                  "softmax probability over the vocabulary (temperature x cosine); rejected classes score 0")


def check_max_classes(value: object) -> int:
    """``value`` as K, or the one message every front end gives for a bad K.

    Raises:
        LmsegError: not a whole number (``1.5``, ``"abc"``, ``true``), or negative.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise LmsegError(f"inference.max_classes must be a whole number (0 = no rejection), got {value!r}")
    if value < 0:
        raise LmsegError(f"inference.max_classes must be 0 (no rejection) or more, got {value}")
    return value


@dataclass(frozen=True)
class ClassBudget:
    """The large-vocabulary settings of a predictor (``inference.max_classes``, ``inference.chunk_elements``).

    LMSeg's and MROVSeg's inference configs extend it; Trident takes it as ``inference=``.

    Attributes:
        max_classes: K of the early-rejection rule (module docstring); 0 = off (the default:
            published protocols run every class).
        chunk_elements: at most this many elements in any class-dependent tensor of one chunk
            (memory only: results do not depend on it beyond floating-point rounding).
    """

    max_classes: int = 0
    chunk_elements: int = DEFAULT_CHUNK_ELEMENTS

    def __post_init__(self) -> None:
        check_max_classes(self.max_classes)
        if isinstance(self.chunk_elements, bool) or not isinstance(self.chunk_elements, int) or self.chunk_elements < 1:
            raise LmsegError(f"inference.chunk_elements must be a whole number above 0, got {self.chunk_elements!r}")

    def rejects(self, num_classes: int) -> bool:
        """Whether rejection removes classes from a vocabulary of ``num_classes`` (``0 < K < N``)."""
        return 0 < self.max_classes < num_classes


def rejection_record(budget: ClassBudget, temperature: float) -> dict[str, object]:
    """The rejection part of a protocol record (the kept set of each image is in its result)."""
    return {"max_classes": budget.max_classes, "rule": REJECTION_RULE if budget.max_classes else "off",
            "temperature": temperature, "chunk_elements": budget.chunk_elements}


def class_chunks(count: int, per_class: int, budget: int) -> list[slice]:
    """Consecutive slices of ``range(count)``, each with at most ``budget // per_class`` items (at least one)."""
    step = max(1, budget // max(1, per_class))
    return [slice(i, min(i + step, count)) for i in range(0, count, step)]


def aligned_chunks(row_to_class: torch.Tensor, per_row: int, budget: int) -> list[slice]:
    """Chunks of rows that never split a class: ``row_to_class`` ``(R,)`` is non-decreasing; each
    chunk holds at most ``budget // per_row`` rows, or one whole class if that class alone has more."""
    owners = row_to_class.tolist()
    step = max(1, budget // max(1, per_row))
    starts = [i for i in range(1, len(owners)) if owners[i] != owners[i - 1]] + [len(owners)]
    chunks, begin, last = [], 0, 0  # last: where the newest class of the open chunk starts
    for end in starts:
        if end - begin > step and last > begin:  # the newest class overflows a non-empty chunk
            chunks.append(slice(begin, last))
            begin = last
        last = end
    chunks.append(slice(begin, len(owners)))
    return chunks


def chunked_softmax(logits: Callable[[slice], torch.Tensor], chunks: Sequence[slice]
                    ) -> Iterator[tuple[slice, torch.Tensor]]:
    """The softmax over all rows, chunk by chunk.

    Args:
        logits: ``chunk -> (rows in chunk, *positions)`` logits; called twice per chunk (once
            for the normaliser) unless there is only one chunk.
        chunks: consecutive slices covering every row.

    Yields:
        ``(chunk, probabilities)``: float32 ``(rows in chunk, *positions)``, summing to 1 over
        all rows at every position.
    """
    if len(chunks) == 1:
        yield chunks[0], logits(chunks[0]).float().softmax(dim=0)
        return
    lse = None
    for chunk in chunks:
        part = logits(chunk).float().logsumexp(dim=0)
        lse = part if lse is None else torch.logaddexp(lse, part)
    for chunk in chunks:
        yield chunk, (logits(chunk).float() - lse).exp_()


def candidate_scores(tokens: torch.Tensor, rows: torch.Tensor, temperature: float, *, budget: int,
                     row_to_class: torch.Tensor | None = None, num_classes: int | None = None) -> torch.Tensor:
    """``s_c`` of the rejection rule (module docstring).

    Args:
        tokens: ``(T, D)`` dense image features in the joint space (any scale).
        rows: ``(R, D)`` text embeddings (any scale), one per class or one per query.
        temperature: multiplies the cosines before the softmax over the R rows.
        budget: at most this many elements per chunk of the ``(rows, T)`` logits.
        row_to_class: ``(R,)`` non-decreasing class of each row (None: row r is class r).
        num_classes: N when rows are queries.

    Returns:
        ``(N,)`` float32 scores in [0, 1].
    """
    f = F.normalize(tokens.float(), dim=-1)
    e = F.normalize(rows.float(), dim=-1)
    best = torch.empty(e.shape[0], device=f.device)
    chunks = class_chunks(e.shape[0], f.shape[0], budget)
    for chunk, probs in chunked_softmax(lambda c: temperature * (e[c] @ f.T), chunks):
        best[chunk] = probs.amax(dim=1)
    if row_to_class is None:
        return best
    out = best.new_zeros(num_classes if num_classes is not None else int(row_to_class.max()) + 1)
    return out.scatter_reduce(0, row_to_class.to(best.device), best, reduce="amax", include_self=True)


def class_rows(prompts: torch.Tensor) -> torch.Tensor:
    """One text row per class from ``(N, P, D)`` prompt channels: the normalised mean of the
    normalised channels, ``(N, D)`` float32 (CLIP's ensemble)."""
    return F.normalize(F.normalize(prompts.float(), dim=-1).mean(dim=1), dim=-1)


def select_candidates(scores: torch.Tensor, k: int, *, always: Sequence[int] = ()) -> torch.Tensor:
    """The ``k`` classes with the largest ``scores`` (ties: the lower index), in ascending order.

    Args:
        scores: ``(N,)``.
        k: how many to keep (``k >= N`` keeps all).
        always: classes kept whatever their score (they count towards ``k``).

    Returns:
        ``(min(k, N),)`` int64 class indices on ``scores``' device, ascending.
    """
    n = scores.shape[0]
    if k >= n:
        return torch.arange(n, device=scores.device)
    ranked = scores.float().clone()
    if always:
        ranked[torch.tensor(list(always), device=scores.device)] = float("inf")
    order = torch.argsort(-ranked, stable=True)  # stable: equal scores keep the lower index first
    return order[:k].sort().values


class LabelReduction:
    """The label map of per-class scores handed over in chunks of classes.

    ``add`` takes chunks in ascending class order; the label is the argmax over every class
    added (the first of equal maxima, as ``torch.argmax``), so classes never added (rejected)
    never win a pixel. Memory: two ``(H, W)`` maps, plus the ``(N, H, W)`` scores only when
    ``keep_scores`` (rows of classes never added stay 0).

    Args:
        num_classes: N of the vocabulary.
        size: ``(H, W)``.
        device: where the maps live.
        keep_scores: also keep every score.
    """

    def __init__(self, num_classes: int, size: tuple[int, int], *, device: torch.device | str,
                 keep_scores: bool) -> None:
        self.best = torch.full(size, float("-inf"), device=device)
        self.labels = torch.zeros(size, dtype=torch.int64, device=device)
        self.scores = torch.zeros(num_classes, *size, device=device) if keep_scores else None

    def add(self, classes: torch.Tensor, scores: torch.Tensor) -> None:
        """Add ``scores`` ``(n, H, W)`` of the classes ``classes`` ``(n,)`` (ascending, above every
        class added before)."""
        value, index = scores.max(dim=0)
        better = value > self.best  # strict: an earlier (lower) class keeps a tie
        self.best = torch.where(better, value.float(), self.best)
        self.labels = torch.where(better, classes.to(self.labels.device)[index], self.labels)
        if self.scores is not None:
            self.scores[classes.to(self.scores.device)] = scores.float()

    def segmentation(self, vocabulary: Vocabulary, kept: torch.Tensor | None) -> Segmentation:
        """The :class:`Segmentation` (scores as float32 numpy only if kept; ``kept`` the classes
        early rejection kept, or None when it removed none)."""
        return Segmentation(
            label_map=self.labels.int().cpu().numpy(),
            class_names=tuple(vocabulary.names),
            scores=None if self.scores is None else self.scores.cpu().numpy(),
            kept=None if kept is None else tuple(int(c) for c in kept.tolist()),
        )


class ReducingPredictor(abc.ABC):
    """A predictor whose protocol writes per-class scores, chunk of classes by chunk of classes,
    into a :class:`LabelReduction` at the image's size (LMSeg, MROVSeg): :meth:`scores_tensor`,
    :meth:`logits` and :meth:`predict` all come from its one :meth:`_reduce`."""

    @abc.abstractmethod
    def _reduce(self, image: ImageInput, vocabulary: VocabularyInput, *, keep_scores: bool
                ) -> tuple[LabelReduction, torch.Tensor | None]:
        """Run the protocol on ``image`` for ``vocabulary``: the reduction (with the ``(N, H, W)``
        scores if ``keep_scores``) and the classes early rejection kept (None: all)."""

    def scores_tensor(self, image: ImageInput, vocabulary: VocabularyInput) -> torch.Tensor:
        """``(N, H, W)`` float32 per-class scores in [0, 1] at the image's resolution (a tensor on
        the device); classes removed by early rejection are 0."""
        return self._reduce(image, vocabulary, keep_scores=True)[0].scores

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 per-class scores in [0, 1] at the image's resolution, before the
        argmax (:meth:`scores_tensor` on the CPU)."""
        return self.scores_tensor(image, vocabulary).cpu().numpy().astype(np.float32, copy=False)

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image into ``vocabulary`` (the protocol: the method's module docstring);
        ``kept`` lists the classes early rejection kept (None when it is off)."""
        vocab = as_vocabulary(vocabulary)
        reduction, kept = self._reduce(image, vocab, keep_scores=return_scores)
        return reduction.segmentation(vocab, kept)
