"""The LLM prompt templates (jinja2; package data, so that installed copies find them).

``attributes.j2`` asks for a class's visual attributes (stage 1, ``gen_prompts``);
``caption_phrases.j2`` asks for the noun phrases of an image caption (MGCA, ``parse_captions``).
They are loaded by :func:`lmseg.llm.prompt.load_prompt`; the sha256 of a template's text is
stored with every row it produced.
"""
