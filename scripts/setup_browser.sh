#!/usr/bin/env bash
# Install Debian's Chromium for the web page's browser test (tests/web), when it is missing.
#
# The test drives /usr/bin/chromium with Playwright; Playwright's own browser downloads are
# never used (they come from outside the package registries). Needs root (CI runs as root);
# without root, or when apt cannot install it, it says so and exits 0: the browser test then
# skips with that reason instead of failing the whole test run.
#
# Usage: scripts/setup_browser.sh
set -uo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "setup: chromium is not installed and this is not a root Debian/Ubuntu shell; the browser test will be skipped" >&2
    exit 0
fi
echo "setup: installing Debian's chromium for the browser test (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; then
    echo "setup: $(/usr/bin/chromium --version 2>/dev/null || echo chromium) ready"
else
    echo "setup: apt-get could not install chromium; the browser test will be skipped" >&2
fi
exit 0
