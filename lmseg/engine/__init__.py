"""The method-independent layer every front end (CLI, web page, distributed executor) calls.

Data flow (one concept per module; none of them imports torch at package import)::

    training:   config.py (YAML -> TrainConfig) -> task.py (the method's TrainTask, found via
                TRAIN_TASKS) -> trainer.py (loop: schedule.py, sampler.py, distributed.py)
                -> checkpoints.py (save / resume) -> atomic.py (every file write)
    inference:  tiler.py (sliding windows, overlap-averaged stitching) inside the predictors;
                shards.py (which items a shard owns) -> runners/ (per-sample steps of
                evaluation and segmentation, and the loops around them)

See docs/engine.md for the layout and how a new method plugs in.
"""
