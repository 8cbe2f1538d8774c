"""Image-caption pairs and their noun phrases (MGCA's training data).

* :mod:`~lmseg.captions.webdataset`: webdataset tar files (img2dataset's format), streamed;
  problems counted and skipped (:class:`~lmseg.captions.webdataset.SkipLog`).
* :mod:`~lmseg.captions.table`: a CSV/Parquet table of image paths and captions.
* :mod:`~lmseg.captions.sources`: deterministic random access by (epoch, position).
* :mod:`~lmseg.captions.phrases`: the shared phrase form and the rule-based parser.
* :mod:`~lmseg.captions.llm` / :mod:`~lmseg.captions.phrase_table` /
  :mod:`~lmseg.captions.table_job`: the LLM stage (built on :mod:`lmseg.llm`, like the
  attribute stage, which it never imports) and its Parquet cache keyed by caption hash.

No torch here: the LLM stage runs in the LLM environment.
"""
