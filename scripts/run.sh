#!/usr/bin/env bash
# The main job: set up .venv if needed, rebuild what changed with `dvc repro`, print a summary.
# Extra arguments go to `dvc repro` (e.g. `scripts/run.sh train` or `--force`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
start=$(date +%s)
dvc repro "$@"
python -m pipeline summary --started "$start"
echo "pipeline time: $(( $(date +%s) - start ))s"
