#!/usr/bin/env bash
# Install what the browser test of `biohybrid viz` needs (tests/test_viz_browser.py):
# Debian's chromium package. Playwright (the Python driver) comes with the dev extras of
# pyproject.toml; Playwright's own browser download is not used (and is not reachable here).
#
# Idempotent and quiet. It never fails the build: where chromium cannot be installed (no
# apt-get, not root, no package), it says why and exits 0, and the browser test skips with
# that reason.
set -uo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: apt-get not available; cannot install chromium (browser test will skip)" >&2
    exit 0
fi
sudo=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        sudo="sudo -n"
    else
        echo "install-browser: not root and no passwordless sudo; cannot install chromium (browser test will skip)" >&2
        exit 0
    fi
fi
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
if $sudo apt-get update -qq >"$log" 2>&1 && $sudo apt-get install -y -qq chromium >>"$log" 2>&1; then
    echo "install-browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)" >&2
else
    tail -n 5 "$log" >&2
    echo "install-browser: could not install chromium (browser test will skip)" >&2
fi
rm -f "$log"
exit 0
