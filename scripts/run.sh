#!/usr/bin/env bash
# The main job: set up .venv if needed, rebuild what changed with `dvc repro`, print a summary.
# Extra arguments go to `dvc repro` (e.g. `scripts/run.sh train` or `--force`).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-env.sh
start=$(date +%s)
# DVC's closing hints (git add dvc.lock, autostage, dvc push: no remote is set up) are said
# once, below, in this project's words; everything else DVC prints passes through
dvc repro "$@" | sed -u -e '/^To track the changes with git, run:$/,/^\tdvc config core.autostage true$/d' \
  -e '/^Use `dvc push` to send your updates to remote storage\.$/d'
python -m pipeline summary --started "$start"
if [ -n "$(git status --porcelain -- dvc.lock 2>/dev/null)" ]; then
  echo "dvc.lock changed: it records the code, params and data each output was built from;" \
       "commit it with them (git add dvc.lock)"
fi
echo "pipeline time: $(( $(date +%s) - start ))s"
