"""The whole pipeline on a competition folder, as a new user runs it: the repository's
params.yaml with only the `data:` section replaced and House Prices' feature rules emptied,
under real `dvc repro` with the default budget. Prints the wall time of every stage, the
trials run and the OOF scores.

    .venv/bin/python benchmarks/competition.py ../shared/data/loans
    .venv/bin/python benchmarks/competition.py ../shared/data/flights --keep /tmp/flights

The folder holds train.csv, test.csv, sample_submission.csv (id column first, target
second) and SOURCE.md (whose "Metric:" line says whether the metric is on a log scale).
Prints figures; asserts nothing. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^Running stage '([\w-]+)'")


def project(folder: Path, where: Path, overrides: dict) -> Path:
    """A copy of the project pointed at `folder`, as docs/new-competition.md says."""
    for name in ("pipeline", "dvc.yaml", ".dvcignore", ".gitignore", "params.yaml"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, where / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, where / name)
    if (ROOT / ".dvc" / "config").exists():  # the offline plots template
        (where / ".dvc").mkdir()
        for name in ("config", "plots-offline.html"):
            if (ROOT / ".dvc" / name).exists():
                shutil.copy(ROOT / ".dvc" / name, where / ".dvc" / name)
    sample = pd.read_csv(folder / "sample_submission.csv", nrows=1)
    # the first line that names the metric: "RMSE between the logarithms of ..." is on a
    # log scale, "RMSE of `arr_delay` (not a log scale: ...)" is not
    metric = re.search(r"^.*\bmetric\b.*$", (folder / "SOURCE.md").read_text(), re.I | re.M)
    said = metric.group(0).lower() if metric else ""
    log = bool(re.search(r"\blog", said)) and "not a log" not in said
    params = yaml.safe_load((where / "params.yaml").read_text())
    params["data"] = {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"),
                      "sample_submission": str(folder / "sample_submission.csv"),
                      "id_column": sample.columns[0], "target": sample.columns[1],
                      "log_target": log}
    params["features"].update(fill_none=[], derived={}, group_impute={}, fit_exclude=[])
    params["tracking"].update(experiment=folder.name, registered_model=f"{folder.name}-mlp")
    params["tune"]["study_name"] = None
    for key, value in overrides.items():
        section, name = key.split(".", 1)
        params[section][name] = value
    (where / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"],
                    ["git", "-c", "user.email=b@example.com", "-c", "user.name=bench", "commit",
                     "-qm", "init"], [sys.executable, "-m", "dvc", "init", "-q", "-f"]):
        subprocess.run(command, cwd=where, check=True, capture_output=True)
    return where


def run(where: Path) -> tuple[float, dict[str, float]]:
    """`dvc repro` in `where`; the whole wall time and each stage's (from DVC's log)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    stages: dict[str, float] = {}
    current, since = None, started
    with subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=where, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        for line in proc.stdout:
            sys.stderr.write(line)
            match = STAGE_LINE.match(line)
            if match:
                now = time.monotonic()
                if current:
                    stages[current] = now - since
                current, since = match.group(1), now
    if proc.returncode:
        raise SystemExit(f"dvc repro failed in {where}")
    total = time.monotonic() - started
    if current:
        stages[current] = started + total - since
    return total, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                        help="params to change besides data: (YAML values)")
    args = parser.parse_args()
    folder = args.folder.resolve()
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    with tempfile.TemporaryDirectory() as tmp:
        where = args.keep.resolve() if args.keep else Path(tmp) / "project"
        where.mkdir(parents=True, exist_ok=True)
        project(folder, where, overrides)
        total, stages = run(where)
        metrics = json.loads((where / "reports" / "metrics.json").read_text())
        plan = json.loads((where / "data" / "plan" / "plan.json").read_text())
        trials = json.loads((where / "data" / "timings" / "tune.json").read_text())["trials"]
        train = json.loads((where / "models" / "train_metrics.json").read_text())
        budget = plan["budget_seconds"] / 60
        print(f"\n{folder.name}: {plan['rows']} rows, {plan['inputs']} input columns, "
              f"{plan['device']}; budget {budget:g} min, used {total / 60:.1f} min")
        print("  stages (min): " + ", ".join(f"{k} {v / 60:.1f}" for k, v in stages.items()))
        print(f"  plan: batch {plan['batch_size']}, {plan['epochs']} epochs; trials run "
              f"{trials} (planned {plan['n_trials']}); final fit {train['n_seeds']} "
              f"seeds x {len(train['feature_views'])} views")
        print(f"  OOF RMSE: final {metrics['oof_rmse']:.5f}, MLP alone "
              f"{metrics['mlp_oof_rmse']:.5f}, " + ", ".join(
                  f"{name} {s['oof_rmse']:.5f}" for name, s in metrics["reference"].items()))
        print(f"  blend: {metrics['blend_weights']}")
        submission = pd.read_csv(where / "data" / "submission.csv")
        print(f"  submission: {len(submission)} rows, columns {list(submission.columns)}")


if __name__ == "__main__":
    main()
