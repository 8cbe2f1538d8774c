"""Running the project's stages on a Ray cluster (``--executor ray``).

* :mod:`lmseg.distributed.cluster`: the Ray options, importing Ray with a clear message, and
  starting or joining a cluster.
* :mod:`lmseg.distributed.llm_tables`: LLM table stages (attributes, caption phrases) on an
  actor pool holding the project's backend, or on ``ray.data.llm`` over vLLM.

Nothing here is imported unless ``--executor ray`` is chosen, so the local path never needs Ray.
"""
