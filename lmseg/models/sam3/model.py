"""The pure sam3 module: an image canvas and encoded prompts in, class score maps out.

:class:`Sam3Semantic` holds SAM 3's image model (:class:`~lmseg.backbones.sam3.Sam3Detector`:
the ``sam3`` package's own ``Sam3Image``) and the rule's settings. The image is encoded once;
the prompts go through ``forward_grounding`` ``prompt_batch`` at a time against that one
encoding, and each batch is reduced to per-prompt evidence and pooled into its classes at once
(:mod:`.evidence`), so memory stays bounded for 150 or 847 classes.
"""

from __future__ import annotations

import torch
from torch import nn

from lmseg.backbones.sam3 import Sam3Detector
from lmseg.models.sam3.config import Sam3Config
from lmseg.models.sam3.evidence import ClassPool, prompt_evidence
from lmseg.models.sam3.prompts import Prompts


class Sam3Semantic(nn.Module):
    """SAM 3 as a semantic segmenter (training-free).

    Args:
        detector: SAM 3's image model.
        config: the rule's settings.
    """

    def __init__(self, detector: Sam3Detector, config: Sam3Config) -> None:
        super().__init__()
        self.detector = detector
        self.config = config

    @property
    def img_size(self) -> int:
        """SAM 3's square input side."""
        return self.detector.img_size

    @torch.no_grad()
    def encode_text(self, prompts: Prompts) -> dict[str, torch.Tensor]:
        """The text encoder's outputs for every prompt (``(32, P, 256)`` features and masks)."""
        return self.detector.encode_text(list(prompts.texts), chunk=self.config.text_batch)

    @torch.no_grad()
    def forward(self, canvas: torch.Tensor, text: dict[str, torch.Tensor], prompts: Prompts) -> torch.Tensor:
        """Class scores on SAM 3's mask grid.

        Args:
            canvas: ``(1, 3, S, S)`` from :meth:`~lmseg.backbones.sam3.Sam3Detector.preprocess`.
            text: :meth:`encode_text` of ``prompts``.
            prompts: the vocabulary's prompts.

        Returns:
            ``(N, h, w)`` float32 class scores in [0, 1], ``h = w = 4 S / 14`` (288 at 1008).
        """
        image = self.detector.encode_image(canvas)
        pool: ClassPool | None = None
        batch = self.config.prompt_batch
        for start in range(0, len(prompts.texts), batch):
            stop = min(start + batch, len(prompts.texts))
            outputs = self.detector.ground(image, text, range(start, stop))
            evidence = prompt_evidence(outputs, self.config)
            if pool is None:
                pool = ClassPool(prompts.num_classes, tuple(evidence.shape[-2:]), self.config.prompt_pooling,
                                 evidence.device)
            pool.add(evidence, torch.tensor(prompts.classes[start:stop]))
            del outputs
        if pool is None:
            raise ValueError("no prompts")
        return pool.result()
