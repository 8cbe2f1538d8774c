"""The segmentation methods: one sub-package each (``lmseg``, ``trident``, ``mrovseg``, ``mgca``).

:mod:`lmseg.registry` takes every sub-package of this package as a method and collects its
``SEGMENTERS`` and ``TRAIN_TASKS``; a new method is a new folder here and nothing else.
:mod:`.building` is the skeleton they share (configs, the one checkpoint path, variants) and
:mod:`.presets` their benchmark presets; methods import nothing else from one another.
"""
