"""``lmseg <stage> ...``: the console entry point, the same as ``python -m pipelines.<stage> ...``.

Stages are the modules of this package that define a ``main(argv)`` (train, evaluate, segment,
prepare_data, gen_prompts, prepare_llm, ...); the shared helpers (``cli`` and the option groups
``*_options``) define none and are not stages. ``lmseg --help`` lists the stages. Installed by
``pip install -e .`` from ``[project.scripts]`` in pyproject.toml; ``python -m pipelines`` works
without installing.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from collections.abc import Sequence
from importlib import resources

import pipelines


def stages() -> list[str]:
    """The stage names, sorted: the modules of :mod:`pipelines` whose source defines ``main``
    (read, not imported: listing the stages loads no library)."""
    folder = resources.files("pipelines")
    return sorted(m.name for m in pkgutil.iter_modules(pipelines.__path__) if m.name != "__main__"
                  and re.search(r"^def main\(", (folder / f"{m.name}.py").read_text(encoding="utf-8"), re.MULTILINE))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = stages()
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: lmseg <stage> [options]   (the same as python -m pipelines.<stage>)\n\nstages: "
              + ", ".join(names) + "\n\n`lmseg <stage> --help` shows a stage's options.")
        return 0 if argv else 2
    stage = argv[0]
    if stage not in names:
        print(f"error: unknown stage {stage!r}; stages: {', '.join(names)}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"pipelines.{stage}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
