"""Converting official dataset downloads into the prepared layouts the readers expect.

Used by ``python -m pipelines.prepare_data``. Each converter is idempotent (existing outputs
are kept unless asked to overwrite; writes are atomic) and names the file of any problem.
"""

from lmseg.data.prepare.ade import prepare_ade150, prepare_ade847
from lmseg.data.prepare.check import CheckReport, check_dataset
from lmseg.data.prepare.cityscapes import prepare_cityscapes19
from lmseg.data.prepare.coco import prepare_coco_object, prepare_cocostuff171
from lmseg.data.prepare.files import ConversionSummary
from lmseg.data.prepare.pascal_context import prepare_pc59, prepare_pc459

__all__ = [
    "CheckReport",
    "ConversionSummary",
    "check_dataset",
    "prepare_ade150",
    "prepare_ade847",
    "prepare_cityscapes19",
    "prepare_coco_object",
    "prepare_cocostuff171",
    "prepare_pc59",
    "prepare_pc459",
]
