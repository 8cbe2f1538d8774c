"""The LLM instructions (jinja2; package data, so that installed copies find them).

``attributes.j2`` asks for a class's visual attributes (stage 1, ``gen_prompts``);
``caption_phrases.j2`` asks for the noun phrases of an image caption (MGCA, ``parse_captions``).
They are loaded by :func:`lmseg.llm.instruction.load_instruction`; the sha256 of an
instruction's text is stored with every row it produced.
"""
