"""Running the project's stages on a Ray cluster (``--executor ray``).

* :mod:`lmseg.distributed.cluster`: the Ray options, importing Ray with a clear message, and
  starting or joining a cluster.
* :mod:`lmseg.distributed.llm_tables`: any LLM table stage (:class:`lmseg.llm.jobs.LLMTableJob`:
  the attribute table of ``gen_prompts``, the caption phrases of ``parse_captions``; rows to
  do -> render -> generate -> validate -> append) on an actor pool holding the project's
  backend, or on ``ray.data.llm``.
* :mod:`lmseg.distributed.vision`: evaluation and segmentation on an actor pool of segmenters,
  around the engine's per-sample steps.

Nothing here is imported unless ``--executor ray`` is chosen, so the local path never needs Ray.
"""
