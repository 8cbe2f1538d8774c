"""Driving Debian's Chromium with Playwright: launch options and where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
NO_CHROMIUM = (
    "Debian's chromium is not installed at /usr/bin/chromium and could not be installed "
    "(scripts/setup_browser.sh installs it with apt-get when run as root)"
)
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def artefacts_dir() -> Path:
    """Where the browser tests leave screenshots: ``$LMSEG_TEST_ARTEFACTS`` or ``<repo>/tmp/artefacts``."""
    root = Path(os.environ.get("LMSEG_TEST_ARTEFACTS") or Path(__file__).resolve().parents[2] / "tmp" / "artefacts")
    root.mkdir(parents=True, exist_ok=True)
    return root


def launch_chromium(playwright, profile: Path):
    """A headless Chromium context with a fresh profile folder (never Playwright's own browser builds)."""
    return playwright.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1400, "height": 1000},
    )
