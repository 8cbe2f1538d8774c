"""LLM prompt templates: jinja2 files rendered into one chat message.

The project's prompt templates are the files of ``prompts/`` (``attributes.j2`` for stage 1,
``caption_phrases.j2`` for MGCA's caption phrases); a user may pass another file. Each stage
renders its own variables (the attribute stage: ``class_name``, ``synonyms``, ``dataset``,
``max_items``; the caption stage: ``caption``, ``max_phrases``). Templates are rendered with
``StrictUndefined``, so a misspelt variable is an error, not an empty string.

The sha256 of a template's text identifies it in every table row it produced (the
``template_sha256`` column). Two words are shared with the CLIP side, with other meanings
there: an "LLM prompt" (this module, ``--prompt``) is the message sent to the language model,
while :mod:`lmseg.text.prompts` builds "class prompts", the sentences CLIP's text tower
encodes; a "prompt template" here is a jinja2 file, while :mod:`lmseg.text.templates` holds
CLIP's sentence templates ("a photo of a {}.").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from lmseg.errors import LmsegError
from lmseg.io.files import read_text_file

ChatMessages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded prompt template.

    Attributes:
        source: where it was read from (for messages).
        text: the template's text.
    """

    source: str
    text: str

    @property
    def sha256(self) -> str:
        """Hex sha256 of the template text (stored with every row it produced)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **variables: object) -> ChatMessages:
        """The template rendered with ``variables`` as one user message.

        Raises:
            LmsegError: the template uses a variable that is not given, or is malformed.
        """
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        try:
            content = env.from_string(self.text).render(**variables)
        except jinja2.TemplateError as exc:
            raise LmsegError(f"prompt template {self.source}: {exc}") from None
        return [{"role": "user", "content": content.strip()}]


def load_prompt(path: str | Path | None, *, default: str) -> PromptTemplate:
    """The prompt template in the file ``path``, or the project's ``prompts/<default>``.

    Raises:
        LmsegError: the file does not exist or cannot be read.
    """
    if path is None:
        return PromptTemplate(f"prompts/{default}", (resources.files("prompts") / default).read_text(encoding="utf-8"))
    path = Path(path)
    return PromptTemplate(str(path), read_text_file(path, what="prompt template"))
