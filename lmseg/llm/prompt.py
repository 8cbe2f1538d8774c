"""The prompt template: a jinja2 file rendered once per class into a chat message.

Templates are rendered with ``StrictUndefined``, so a misspelt variable is an error, not an
empty string. The variables are:

    class_name  the primary name (str)
    synonyms    the other names (list[str], may be empty)
    dataset     the vocabulary's name (str)
    max_items   the most phrases wanted per group (int)

The sha256 of the template's text identifies it in the attribute table.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from lmseg.errors import LmsegError
from lmseg.vocab import ClassEntry

ChatMessages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template.

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

    def render(self, entry: ClassEntry, *, dataset: str, max_items: int) -> ChatMessages:
        """Render the chat messages that ask for one class's attributes.

        Raises:
            LmsegError: the template uses a variable that is not provided, or is malformed.
        """
        return self.render_variables(
            class_name=entry.name, synonyms=list(entry.synonyms), dataset=dataset, max_items=max_items
        )

    def render_variables(self, **variables: object) -> ChatMessages:
        """Render the template with the given variables into one user message (any stage's
        template: the caption-phrase stage passes ``caption`` and ``max_phrases``).

        Raises:
            LmsegError: the template uses a variable that is not provided, or is malformed.
        """
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False)
        try:
            content = env.from_string(self.text).render(**variables)
        except jinja2.TemplateError as exc:
            raise LmsegError(f"prompt template {self.source}: {exc}") from None
        return [{"role": "user", "content": content.strip()}]


def load_template(path: str | Path | None = None) -> PromptTemplate:
    """Load a template file, or the project's default ``prompts/attributes.j2``.

    Raises:
        LmsegError: the file does not exist or cannot be read.
    """
    if path is None:
        resource = resources.files("prompts") / "attributes.j2"
        return PromptTemplate("prompts/attributes.j2", resource.read_text(encoding="utf-8"))
    path = Path(path)
    try:
        return PromptTemplate(str(path), path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LmsegError(f"prompt template {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LmsegError(f"cannot read prompt template {path}: {exc}") from None
