"""Jinja2 templates for the LLM stage (package data, so that installed copies find them).

``attributes.j2`` renders the user message that asks for a class's visual attributes. The
sha256 of a template's text is stored with every attribute row it produced.
"""
