"""Shared fixtures: a tiny synthetic house-price competition written to CSV files; and a guard
that fails the session if any test wrote into the checkout's generated outputs."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from pipeline.config import Config, DataConfig, config_from_dict
from pipeline.data.schema import infer_schema
from pipeline.data.validate import coerce, load_competition
from pipeline.final import fit_final_model
from pipeline.io import save_pickle

REPO = Path(__file__).resolve().parents[1]

torch.set_num_threads(1)

# What the pipeline generates in a checkout (DVC outputs and the side stores beside them): a
# test that changes any of them has written into the user's project (tests use tmp_path)
GENERATED = ("data/prepared", "data/plan", "data/tune", "data/reference", "data/optuna",
             "data/timings", "data/submission.csv", "models", "reports", "mlflow.db",
             "mlruns", "mlartifacts", "dvc.lock", "dvc_plots")
HASHED_BYTES = 1 << 20  # files up to this size are compared by content, larger by size+mtime


def snapshot(root: Path, names: tuple[str, ...] = GENERATED) -> dict[str, tuple]:
    """Each file and folder under `names` (relative to `root`): size, mtime and, for a small
    file, the SHA-256 of its bytes; a folder by its mtime (an entry added and removed)."""
    state: dict[str, tuple] = {}
    for name in names:
        top = root / name
        paths = [top, *sorted(top.rglob("*"))] if top.is_dir() else [top]
        for path in paths:
            if not path.exists() and not path.is_symlink():
                continue
            info = path.lstat()
            key = str(path.relative_to(root)) + ("/" if path.is_dir() else "")
            if path.is_dir():
                state[key] = ("folder", info.st_mtime_ns)
            else:
                digest = (hashlib.sha256(path.read_bytes()).hexdigest()
                          if path.is_file() and info.st_size <= HASHED_BYTES else None)
                state[key] = (info.st_size, info.st_mtime_ns, digest)
    return state


def changes(before: dict[str, tuple], after: dict[str, tuple]) -> list[str]:
    """What differs between two snapshots, one line per path."""
    return ([f"created {p}" for p in sorted(after.keys() - before.keys())]
            + [f"removed {p}" for p in sorted(before.keys() - after.keys())]
            + [f"changed {p}" for p in sorted(before.keys() & after.keys())
               if before[p] != after[p]])


@pytest.fixture(scope="session", autouse=True)
def checkout_untouched() -> Iterator[None]:
    """Fails the session (an error at the last test's teardown) when a test created, changed
    or removed any of the checkout's generated outputs: tests never write into the project."""
    before = snapshot(REPO)
    yield
    changed = changes(before, snapshot(REPO))
    if changed:
        pytest.fail(f"tests wrote into the checkout {REPO} (or a `dvc repro` ran there during "
                    "the tests): " + "; ".join(changed[:20])
                    + (f"; and {len(changed) - 20} more" if len(changed) > 20 else ""),
                    pytrace=False)


def make_houses(n_rows: int, seed: int = 0, first_id: int = 1) -> pd.DataFrame:
    """A small frame shaped like House Prices: numbers, text, an ordinal scale, gaps."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(600, 3000, n_rows).round()
    quality = rng.integers(1, 11, n_rows)
    year = rng.integers(1900, 2010, n_rows)
    hood = rng.choice(["North", "South", "East", "West"], n_rows)
    zoning = rng.choice(["RL", "RM", "FV"], n_rows, p=[0.6, 0.3, 0.1])
    exter = rng.choice(["Fa", "TA", "Gd", "Ex"], n_rows)
    frontage = rng.uniform(40, 120, n_rows).round()
    frontage[rng.random(n_rows) < 0.15] = np.nan
    pool = np.where(rng.random(n_rows) < 0.1, rng.choice(["Gd", "Ex"], n_rows), None)
    hood_effect = pd.Series(hood).map({"North": 0.1, "South": -0.1, "East": 0.05, "West": 0.0})
    log_price = (10.5 + 0.45 * np.log(area) + 0.08 * quality + 0.002 * (year - 1950)
                 + hood_effect.to_numpy() + rng.normal(0, 0.08, n_rows))
    return pd.DataFrame({
        "Id": np.arange(first_id, first_id + n_rows),
        "LotFrontage": frontage,
        "GrLivArea": area,
        "OverallQual": quality,
        "YearBuilt": year,
        "YrSold": rng.integers(2006, 2011, n_rows),
        "Neighborhood": hood,
        "MSZoning": zoning,
        "ExterQual": exter,
        "PoolQC": pool,
        "SalePrice": np.exp(log_price).round(),
    })


def wide_frame(n_rows: int = 3000, levels: int = 400, seed: int = 0):
    """A category with many levels whose mean target differs, and one with few."""
    rng = np.random.default_rng(seed)
    tail = rng.integers(0, levels, n_rows)
    effect = rng.normal(0, 1, levels)
    frame = pd.DataFrame({"Id": np.arange(n_rows), "x": rng.normal(size=n_rows),
                          "tail": [f"N{t}" for t in tail],
                          "origin": rng.choice(["EWR", "JFK", "LGA"], n_rows)})
    frame["y"] = effect[tail] + 0.5 * frame["x"] + rng.normal(0, 0.3, n_rows)
    schema = infer_schema(frame, DataConfig(id_column="Id", target="y"))
    return coerce(frame, schema, "train.csv"), schema


def small_params(data_dir: Path, **sections: dict) -> dict:
    """params.yaml content for the synthetic competition: few epochs, trials and folds."""
    params = {
        "base": {"seed": 7, "threads": 1},
        "data": {
            "train": str(data_dir / "train.csv"),
            "test": str(data_dir / "test.csv"),
            "sample_submission": str(data_dir / "sample_submission.csv"),
            "id_column": "Id", "target": "SalePrice", "log_target": True,
            "column_types": {"ExterQual": "ordinal", "PoolQC": "ordinal"},
            "ordinal_levels": {"ExterQual": ["Po", "Fa", "TA", "Gd", "Ex"],
                               "PoolQC": ["None", "Fa", "TA", "Gd", "Ex"]},
        },
        "features": {
            "fill_none": ["PoolQC"],
            "derived": {"Age": {"YrSold": 1, "YearBuilt": -1}},
            "group_impute": {"LotFrontage": "Neighborhood"},
            "log1p_skew_threshold": 0.75,
        },
        "cv": {"n_folds": 3},
        "model": {"depth": 1, "width": 16, "epochs": 12, "batch_size": 32, "lr": 0.01,
                  "eval_every": 3},
        "ensemble": {"n_seeds": 1},
        "tune": {"n_trials": 2, "n_startup_trials": 1,
                 "pruner": {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 3},
                 "search_space": {"lr": {"low": 0.001, "high": 0.03, "log": True},
                                  "dropout": {"low": 0.0, "high": 0.3}}},
        "tracking": {"experiment": "test"},
    }
    for name, values in sections.items():
        params[name] = {**params.get(name, {}), **values}
    return params


def write_competition(directory: Path, train: pd.DataFrame, test: pd.DataFrame) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    train.to_csv(directory / "train.csv", index=False)
    test.to_csv(directory / "test.csv", index=False)
    pd.DataFrame({"Id": test["Id"], "SalePrice": 100000.0}).to_csv(
        directory / "sample_submission.csv", index=False)
    return directory


def run_cli(*args: str | Path, preexec_fn: Callable[[], None] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m pipeline <args>` in a process of its own (its limits its own)."""
    return subprocess.run([sys.executable, "-m", "pipeline", *map(str, args)], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, preexec_fn=preexec_fn,
                          capture_output=True, text=True, timeout=600)


def file_size_limit(limit: int) -> Callable[[], None]:
    """A preexec_fn: the child writes no file past `limit` bytes (`ulimit -f`); Python ignores
    SIGXFSZ, so such a write fails with EFBIG (File too large), as on a full disk."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """`folder` unwritable for the block (nothing created, replaced or removed in it): for a
    user, its write bits off; root ignores those, so for root the immutable attribute
    (`chattr +i`), and the test is skipped where neither can be set. Yields the reason the
    system will give."""
    if os.geteuid() != 0:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield "Permission denied"
        finally:
            folder.chmod(mode)
        return
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("running as root, who ignores mode bits, and chattr (e2fsprogs) is not "
                    "installed: cannot make a folder unwritable")
    made = subprocess.run([chattr, "+i", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"running as root, who ignores mode bits, and `chattr +i` failed here "
                    f"({made.stderr.strip()}): cannot make a folder unwritable")
    try:
        yield "Operation not permitted"
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def leftovers(folder: Path) -> list[str]:
    """Temp files and folders of the atomic writes left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def houses() -> tuple[pd.DataFrame, pd.DataFrame]:
    train = make_houses(150, seed=1)
    test = make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice")
    return train, test


@pytest.fixture
def competition(tmp_path: Path, houses) -> Path:
    """The synthetic competition's CSVs in a temp dir."""
    return write_competition(tmp_path / "raw", *houses)


@pytest.fixture
def config(competition: Path) -> Config:
    return config_from_dict(small_params(competition))


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Path:
    """The synthetic competition's CSVs, params.yaml (NA declared missing) and a final model
    saved as the train stage saves it, with its SHA-256 record: model.pkl(.sha256)."""
    root = tmp_path_factory.mktemp("trained")
    train = make_houses(150, seed=1)
    test = make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice")
    write_competition(root / "raw", train, test)
    params = small_params(root / "raw", data={"na_values": ["NA"]})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = config_from_dict(params)
    frame, _, schema = load_competition(cfg.data)
    save_pickle(root / "model.pkl", fit_final_model(frame, schema, cfg, {}).model)
    return root


@pytest.fixture(scope="session")
def e2e_project(tmp_path_factory) -> Path:
    """A small House Prices project after a real `dvc repro`, shared by the end-to-end and
    notebook tests (one pipeline run for both)."""
    from .test_end_to_end import dvc, small_project

    project = small_project(tmp_path_factory.mktemp("e2e"))
    result = dvc(project, "repro")
    # what the user saw, beside the project (outside its git work tree)
    (project.parent / "repro.log").write_text(result.stdout + result.stderr)
    return project
