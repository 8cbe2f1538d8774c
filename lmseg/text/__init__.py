"""CLIP text side: prompts, attribute sentences, the embedding cache and the one embedder.

* :mod:`~lmseg.text.embedder`: :class:`~lmseg.text.embedder.TextEmbedder`, which every method
  uses: vocabulary (+ attribute table) -> :class:`~lmseg.text.embedder.ClassEmbeddings`.
* :mod:`~lmseg.text.templates`: the 80 ImageNet prompt templates (open_clip's list).
* :mod:`~lmseg.text.ensemble`: per-query template-ensemble embeddings, the query -> class
  map for synonyms, and max-pooling of per-query probabilities over the synonyms of a class.
* :mod:`~lmseg.text.prompts`: class and attribute sentences and their channels.
* :mod:`~lmseg.text.table`: a stage-1 attribute table read once and checked per vocabulary.
* :mod:`~lmseg.text.cache`: the on-disk embedding cache and its keys.

Words: "prompt" = input to a vision model (a CLIP sentence, a SAM point/box/text); "instruction"
= the jinja2 message sent to the LLM (:mod:`lmseg.llm.instruction`).

This package imports torch only through :mod:`~lmseg.text.ensemble`, :mod:`~lmseg.text.cache`
and :mod:`~lmseg.text.embedder`; :mod:`~lmseg.text.templates` needs open_clip.
"""
