"""What every segmentation model offers users: image in, label map and scores out.

* :mod:`~lmseg.inference.segmenter`: the :class:`Segmenter` protocol and :class:`Segmentation`.
* :mod:`~lmseg.inference.image_input`: turning paths, PIL images and arrays into RGB arrays.
"""

from lmseg.inference.image_input import ImageInput, ImageLimits, as_rgb_array
from lmseg.inference.segmenter import Segmentation, Segmenter, VocabularyInput, as_vocabulary

__all__ = ["ImageInput", "ImageLimits", "Segmentation", "Segmenter", "VocabularyInput", "as_rgb_array", "as_vocabulary"]
