#!/usr/bin/env bash
# Create .venv with Python 3.11 or newer and install the project into it; sourced by run.sh
# and test.sh. Re-installs only when pyproject.toml changed since the last install.
# python3.11 is preferred when present (the version CI tests); set PYTHON to use another.
set -euo pipefail
PYTHON=${PYTHON:-python3.11}
"$PYTHON" --version >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' || {
  echo "error: Python 3.11 or newer is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3" >&2
  exit 1
}
if [ ! -x .venv/bin/python ]; then
  echo "creating .venv" >&2
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing the project and its dependencies into .venv (a few minutes the first time)" >&2
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  rm -f .venv/.installed-*
  touch "$stamp"
fi
export PATH="$PWD/.venv/bin:$PATH"
