"""Fault injection for the Ray tests: a real tiny segmenter whose worker dies, or fails, once.

Only the faults are fake: the predictions are the real ``lmseg_tiny`` model's. The marker file
makes the fault happen exactly once across the cluster's processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lmseg.errors import LmsegError


class FaultOnce:
    """``lmseg_tiny`` that faults on its first prediction.

    Args:
        marker: created at the fault; once it exists, every prediction is the real one.
        fault: ``"die"`` ends the whole worker process (as a crashed or killed machine would);
            ``"fail"`` raises an ``LmsegError`` (a sample the model refuses).
    """

    def __init__(self, marker: str, fault: str) -> None:
        from lmseg import create_segmenter

        self.model = create_segmenter("lmseg_tiny")
        self.marker, self.fault = Path(marker), fault

    def predict(self, image: Any, vocabulary: Any, **kwargs: Any) -> Any:
        if not self.marker.exists():
            self.marker.write_text(str(os.getpid()))
            if self.fault == "die":
                os._exit(1)
            raise LmsegError("injected failure of one sample")
        return self.model.predict(image, vocabulary, **kwargs)

    def logits(self, image: Any, vocabulary: Any) -> Any:
        return self.model.logits(image, vocabulary)

    def settings(self) -> dict[str, Any]:
        return self.model.settings()

