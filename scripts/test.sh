#!/usr/bin/env bash
# The test suite: set up .venv if needed, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
python -m pytest "$@"
