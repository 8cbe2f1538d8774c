"""The 80 ImageNet prompt templates of CLIP ("a bad photo of a {}.", ...).

They are taken from open_clip (``OPENAI_IMAGENET_TEMPLATES``) rather than copied, so that the
list and its order are exactly the ones CLIP's zero-shot evaluation, ProxyCLIP and Trident use.
Each template is a callable ``name -> sentence``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from open_clip import OPENAI_IMAGENET_TEMPLATES

Template = Callable[[str], str]

#: The 80 templates in CLIP's order.
IMAGENET_TEMPLATES: tuple[Template, ...] = tuple(OPENAI_IMAGENET_TEMPLATES)


def fill_templates(name: str, templates: Sequence[Template] = IMAGENET_TEMPLATES) -> list[str]:
    """The sentences for one class name, one per template, in template order."""
    return [template(name) for template in templates]
