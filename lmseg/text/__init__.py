"""CLIP text side: prompt templates and template-ensemble embeddings.

* :mod:`~lmseg.text.templates`: the 80 ImageNet prompt templates (open_clip's list).
* :mod:`~lmseg.text.ensemble`: per-query template-ensemble embeddings, the query -> class
  map for synonyms, and max-pooling of per-query probabilities over the synonyms of a class.
* :mod:`~lmseg.text.prompts` / :mod:`~lmseg.text.cache`: LMSeg's attribute prompts and the
  embedding cache (built on the templates above).

This package imports torch only through :mod:`~lmseg.text.ensemble`; :mod:`~lmseg.text.templates`
needs open_clip.
"""
