"""LLM instructions: jinja2 files rendered into the one chat message sent to the language model.

The project's instructions are the files of ``instructions/`` (``attributes.j2`` for stage 1,
``caption_phrases.j2`` for MGCA's caption phrases); a user may pass another file
(``--instruction FILE``). Each stage renders its own variables (the attribute stage:
``class_name``, ``synonyms``, ``dataset``, ``max_items``; the caption stage: ``caption``,
``max_phrases``). Instructions are rendered with ``StrictUndefined``, so a misspelt variable is
an error, not an empty string.

The sha256 of an instruction's text identifies it in every table row it produced (the
``instruction_sha256`` column). The word is chosen so that each word keeps one meaning: a
"prompt" is the input of a vision model (the CLIP sentences of :mod:`lmseg.text.prompts` and
:mod:`lmseg.text.templates`, SAM's points, boxes and text), an "instruction" is the jinja2
message sent to the LLM.
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
class Instruction:
    """A loaded instruction (a jinja2 file).

    Attributes:
        source: where it was read from (for messages).
        text: the jinja2 text.
    """

    source: str
    text: str

    @property
    def sha256(self) -> str:
        """Hex sha256 of the instruction's text (stored with every row it produced)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, **variables: object) -> ChatMessages:
        """The instruction rendered with ``variables`` as one user message.

        Raises:
            LmsegError: the instruction uses a variable that is not given, or is malformed.
        """
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        try:
            content = env.from_string(self.text).render(**variables)
        except jinja2.TemplateError as exc:
            raise LmsegError(f"instruction {self.source}: {exc}") from None
        return [{"role": "user", "content": content.strip()}]


def load_instruction(path: str | Path | None, *, default: str) -> Instruction:
    """The instruction in the file ``path``, or the project's ``instructions/<default>``.

    Raises:
        LmsegError: the file does not exist or cannot be read.
    """
    if path is None:
        text = (resources.files("instructions") / default).read_text(encoding="utf-8")
        return Instruction(f"instructions/{default}", text)
    path = Path(path)
    return Instruction(str(path), read_text_file(path, what="instruction"))
