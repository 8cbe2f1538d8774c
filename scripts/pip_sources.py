"""Print, one per line, the uv arguments that name the package sources pip is configured with.

pip reads its index, extra indexes and find-links folders from its configuration files and
PIP_* variables (`pip config list`); uv reads neither, so scripts/install.sh passes them on.
Sources that do not exist on this machine (a local folder named in a configuration copied
from elsewhere) are left out, as pip itself ignores them. With several sources, uv is told to
choose versions across all of them, as pip does.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links"}


def pip_config() -> dict[str, list[str]]:
    """Each source option of pip's configuration (files and PIP_* variables) -> its values."""
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                             check=False).stdout
    found: dict[str, list[str]] = {}
    for line in listing.splitlines():
        match = re.fullmatch(r"[^.]*\.([a-z-]+)='(.*)'", line.strip())
        if match and match.group(1) in OPTIONS:
            found.setdefault(match.group(1), []).extend(shlex.split(match.group(2)))
    for name in OPTIONS:
        value = os.environ.get("PIP_" + name.upper().replace("-", "_"))
        if value:
            found.setdefault(name, []).extend(value.split())
    return found


def usable(source: str) -> bool:
    """A URL, or a local folder (plain or ``file://``) that exists here."""
    path = source.removeprefix("file://")
    return "://" in source and not source.startswith("file://") or Path(path).exists()


def main() -> None:
    arguments: list[str] = []
    for name, values in pip_config().items():
        for value in dict.fromkeys(values):
            if usable(value):
                arguments += [OPTIONS[name], value]
    if arguments:
        arguments.append("--index-strategy=unsafe-best-match")
    print("\n".join(arguments))


if __name__ == "__main__":
    main()
