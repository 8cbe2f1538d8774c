"""The LLM layer: what every stage that asks an LLM shares (no torch).

Stage 1's attributes (:mod:`lmseg.attributes`) and MGCA's caption phrases
(:mod:`lmseg.captions`) are built on it; neither imports the other.
"""
