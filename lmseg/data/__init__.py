"""Dataset readers for the standard open-vocabulary benchmarks and for users' own folders.

Numpy and Pillow only (no torch). Each reader decodes one sample at a time:

>>> from lmseg.data import open_dataset
>>> dataset = open_dataset("ade150", "/data")        # /data/ADEChallengeData2016/...
>>> for sample in dataset:                           # sample.image, sample.label, sample.sample_id
...     ...

Labels decode to class indices ``0 .. K-1`` in the order of the dataset's ``vocabulary``;
pixels that are not evaluated hold ``dataset.ignore_index`` (255, or 65535 for ADE-847 and
PC-459). The expected folder trees are in the docstrings of :mod:`lmseg.data.ade`,
:mod:`lmseg.data.pascal`, :mod:`lmseg.data.coco`, :mod:`lmseg.data.driving` and
:mod:`lmseg.data.folder`.
"""

from lmseg.data.benchmark import Benchmark
from lmseg.data.catalog import available_datasets, get_benchmark, open_dataset
from lmseg.data.dataset import Sample, SegmentationDataset
from lmseg.data.folder import folder_dataset
from lmseg.data.image_io import read_image, read_label_file
from lmseg.data.label_map import LabelMap

__all__ = [
    "Benchmark",
    "LabelMap",
    "Sample",
    "SegmentationDataset",
    "available_datasets",
    "folder_dataset",
    "get_benchmark",
    "open_dataset",
    "read_image",
    "read_label_file",
]
