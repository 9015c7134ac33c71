#!/usr/bin/env bash
# Create .venv with a Python >= 3.12 and install biohybrid (editable) with its dev tools.
# Idempotent: reinstalls only when pyproject.toml or setup.py changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."

find_python() {
    local candidates=("${BIOHYBRID_PYTHON:-}" python3.13 python3.12 python3 python)
    if command -v pyenv >/dev/null 2>&1; then
        local root; root="$(pyenv root)"
        for v in "$root"/versions/3.13* "$root"/versions/3.12*; do
            [ -x "$v/bin/python" ] && candidates+=("$v/bin/python")
        done
    fi
    for c in "$HOME"/.pyenv/versions/3.13*/bin/python "$HOME"/.pyenv/versions/3.12*/bin/python \
             /usr/local/bin/python3.13 /usr/local/bin/python3.12 /usr/bin/python3.13 /usr/bin/python3.12; do
        candidates+=("$c")
    done
    for c in "${candidates[@]}"; do
        [ -z "$c" ] && continue
        if command -v "$c" >/dev/null 2>&1 || [ -x "$c" ]; then
            if "$c" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then
                echo "$c"; return 0
            fi
        fi
    done
    return 1
}

stamp=.venv/.installed-stamp
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt setup.py ]; then
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    py="$(find_python)" || { echo "error: biohybrid needs Python >= 3.12; none found (set BIOHYBRID_PYTHON=/path/to/python3.12)" >&2; exit 2; }
    echo "bootstrap: creating .venv with $py ($("$py" --version))" >&2
    "$py" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install --quiet -e ".[dev]" >.venv/install.log 2>&1 || { cat .venv/install.log >&2; echo "error: pip install failed (log above)" >&2; exit 1; }
.venv/bin/python -c "import biohybrid" || { echo "error: install of biohybrid failed" >&2; exit 1; }
touch "$stamp"
