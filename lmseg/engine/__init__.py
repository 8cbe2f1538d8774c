"""Training, for every method: the one trainer and the contract a method's task fulfils.

Data flow (one concept per module; none of them imports torch at package import)::

    config.py (YAML + --set -> TrainConfig) -> task.py (the TrainTask contract; a method's task
    comes from lmseg.registry.create_train_task) -> trainer.py (the loop: schedule.py,
    sampler.py, ddp.py) -> checkpoints.py (save / exact resume)

Inference (window tiler, per-image outputs) is :mod:`lmseg.inference`; evaluation is
:mod:`lmseg.evaluation`; file writes and progress are :mod:`lmseg.io`. See docs/engine.md.
"""
