"""Our MLP beside the published state of the art and a plain LightGBM, on the same folds.

On one competition, every model is cross-validated on the pipeline's own folds (the same
fit rows: rows excluded from fitting are only scored) and its out-of-fold RMSE printed on
all rows and on the fit rows, with its seconds:

- `ours`: the pipeline's MLP (params.yaml's `model:` at the sizes the plan's rule picks
  from the rows, `--set model.x=...` to change one), one seed per fold unless --seeds;
- `realmlp`, `tabm`: pytabkit's RealMLP_TD_Regressor and TabM_D_Regressor with their
  published defaults, on the raw columns (numbers, categories as pandas categories, dates as
  days), each fold's fit rows in, its validation rows predicted (pytabkit holds out its own
  share of the fit rows to pick the best epoch);
- `lgbm`: a plain LightGBM on the raw columns with native categorical handling, 63 leaves,
  early-stopped on a tenth of the fit rows;
- `reference`: the pipeline's own GBM reference (`reference:` params) on its view: the tree
  view with `reference.gbm_categoricals: native` (the default), else the MLP's features
  (`--set reference.gbm_categoricals=onehot`).

    .venv/bin/python benchmarks/yardstick.py .                        # House Prices (repo)
    .venv/bin/python benchmarks/yardstick.py ../shared/data/loans --models ours realmlp
    .venv/bin/python benchmarks/yardstick.py . --models ours --set model.depth=3
    .venv/bin/python benchmarks/yardstick.py ../shared/data/flights --folds 1   # large data

`--pytabkit KEY=VALUE` changes the pytabkit models' arguments (e.g. `n_epochs=8` where their
defaults do not fit a time budget: TabM-D's run until 16 epochs without progress).

`--folds N` fits and scores only the first N folds (their validation rows), as the tune
stage's one-fold trials do on large data: the yardsticks' fixed epochs on 200 k rows take
longer than five folds allow.

pytabkit is a benchmark extra (`pip install -e .[bench]`), never a pipeline dependency.
Prints figures; asserts nothing. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import config_from_dict, read_yaml  # noqa: E402
from pipeline.cv import (  # noqa: E402
    cross_validate_estimator,
    cross_validate_mlp,
    fit_fold_features,
    make_folds,
    model_target,
)
from pipeline.data.validate import load_competition  # noqa: E402
from pipeline.metrics import rmse  # noqa: E402
from pipeline.plan import resolve_model, resolve_reference  # noqa: E402
from pipeline.reference import gbm_reference  # noqa: E402

MODELS = ("ours", "realmlp", "tabm", "lgbm", "reference")


def competition_params(folder: Path) -> dict:
    """params.yaml for a competition folder: the repository's own for the repository, else
    its params with `data:` pointed at the folder and House Prices' feature rules emptied."""
    params = read_yaml(ROOT / "params.yaml")
    if folder.resolve() == ROOT:
        params["data"] = {**params["data"], **{k: str(ROOT / params["data"][k])
                                               for k in ("train", "test",
                                                         "sample_submission")}}
        return params
    scale = next((line for line in (folder / "SOURCE.md").read_text().splitlines()
                  if "metric" in line.lower()), "").lower()
    sample = pd.read_csv(folder / "sample_submission.csv", nrows=1)
    params["data"] = {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"),
                      "sample_submission": str(folder / "sample_submission.csv"),
                      "id_column": sample.columns[0], "target": sample.columns[1],
                      "log_target": "log" in scale and "not a log" not in scale}
    params["features"].update(fill_none=[], derived={}, group_impute={}, fit_exclude=[])
    return params


def cpu_kind() -> str:
    """The CPU's widest vector extension, as every figure must say."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "no AVX2"


def raw_frame(train: pd.DataFrame, schema) -> pd.DataFrame:
    """The feature columns as a plain model takes them: numbers as floats, categories as
    pandas categories (missing as its own level), dates as days since 1970."""
    out = {}
    for column, kind in schema.columns.items():
        values = train[column]
        if kind == "categorical":
            out[column] = values.astype("string").fillna("missing").astype("category")
        elif kind == "datetime":
            stamps = pd.to_datetime(values)
            out[column] = ((stamps - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1))
        elif kind == "ordinal":
            levels = {v: float(i) for i, v in enumerate(schema.ordinal_levels[column])}
            out[column] = values.map(levels).astype("float64")
        else:
            out[column] = pd.to_numeric(values, errors="coerce").astype("float64")
    return pd.DataFrame(out)


class PlainLightGBM:
    """LightGBM on raw columns: native categoricals, 63 leaves, early-stopped on a tenth."""

    def __init__(self, seed: int, threads: int) -> None:
        self.seed, self.threads = seed, threads

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> PlainLightGBM:
        rng = np.random.default_rng(self.seed)
        held = rng.random(len(y)) < 0.1
        params = {"objective": "regression", "learning_rate": 0.05, "num_leaves": 63,
                  "min_child_samples": 20, "feature_fraction": 0.8, "bagging_fraction": 0.8,
                  "bagging_freq": 1, "num_threads": self.threads, "seed": self.seed,
                  "deterministic": True, "force_row_wise": True, "verbosity": -1}
        fit = lgb.Dataset(x[~held], y[~held])
        val = lgb.Dataset(x[held], y[held], reference=fit)
        self.booster = lgb.train(params, fit, 20_000, valid_sets=[val],
                                 callbacks=[lgb.early_stopping(200, verbose=False)])
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.booster.predict(x, num_iteration=self.booster.best_iteration)


class MedianImputed:
    """A model on raw columns whose numeric gaps are filled with the fit rows' medians
    (pytabkit refuses NaN in numeric columns)."""

    def __init__(self, model) -> None:
        self.model = model

    def _filled(self, x: pd.DataFrame) -> pd.DataFrame:
        return x.fillna(self.medians_)

    def fit(self, x: pd.DataFrame, y: np.ndarray) -> MedianImputed:
        numeric = x.select_dtypes(include="number")
        self.medians_ = numeric.median().fillna(0.0).to_dict()
        self.model.fit(self._filled(x), y)
        return self

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict(self._filled(x))


def cross_validate_raw(make, x: pd.DataFrame, y: np.ndarray, folds) -> np.ndarray:
    """OOF predictions of a model on raw columns, one fit per fold."""
    oof = np.full(len(y), np.nan)
    for fit_rows, val_rows in zip(folds.fit_rows, folds.val_rows, strict=True):
        model = make().fit(x.iloc[fit_rows], y[fit_rows])
        oof[val_rows] = np.asarray(model.predict(x.iloc[val_rows])).reshape(-1)
    return oof


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a competition folder, or the repository")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE",
                        help="params to change (YAML values), e.g. model.depth=3")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per fold for `ours`")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--folds", type=int, default=None,
                        help="fit and score only the first N folds")
    parser.add_argument("--pytabkit", nargs="*", default=[], metavar="KEY=VALUE",
                        help="arguments for the pytabkit models besides their defaults (YAML "
                             "values), e.g. n_epochs=8 to fit a time budget")
    args = parser.parse_args()
    options = {key: yaml.safe_load(value)
               for key, value in (s.split("=", 1) for s in args.pytabkit)}
    torch.set_num_threads(args.threads)
    params = competition_params(args.folder)
    for key, value in (s.split("=", 1) for s in args.set):
        section, name = key.split(".", 1)
        params[section][name] = yaml.safe_load(value)
    cfg = config_from_dict(params)
    train, _, schema = load_competition(cfg.data)
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    if args.folds:
        folds = folds.first(args.folds)
    y = model_target(train, schema)
    scored = np.zeros(len(y), dtype=bool)  # the rows the kept folds validate on
    for rows in folds.val_rows:
        scored[rows] = True
    kept = scored & ~folds.excluded
    isa = cpu_kind()
    print(f"{args.folder.resolve().name}: {len(train)} rows, {len(schema.columns)} columns, "
          f"{len(folds.val_rows)} of {cfg.cv.n_folds} folds scored ({scored.sum()} rows); "
          f"{platform.machine()}, {args.threads} threads, {isa}; "
          f"changes {args.set or 'none'}, pytabkit {options or 'defaults'}", flush=True)
    print("| model | OOF RMSE all rows | fit rows | seconds |\n|---|---|---|---|", flush=True)
    features = None
    for name in args.models:
        started = time.monotonic()
        if name in ("ours", "reference") and features is None:
            features = fit_fold_features(train, folds, schema, cfg.features, cfg.base.seed)
        if name == "ours":
            model = resolve_model(cfg.model, len(folds.fit_rows[0]))
            oof = cross_validate_mlp(features, y, folds, model, cfg.base.seed,
                                     n_seeds=args.seeds).oof
        elif name == "reference":
            trees = None
            if cfg.reference.gbm_categoricals == "native":
                trees = fit_fold_features(train, folds, schema, cfg.features, cfg.base.seed,
                                          trees=True)
            gbm = gbm_reference(resolve_reference(cfg.reference, len(folds.fit_rows[0])),
                                cfg.base.seed, threads=args.threads,
                                n_categorical=0 if trees is None else trees.n_categorical)
            result = cross_validate_estimator(trees or features, y, folds, gbm)
            oof = result.oof
            print(f"reference: {gbm.num_leaves} leaves, lr {gbm.learning_rate:g}, rounds per "
                  f"fold {[m.n_rounds_ for m in result.trained]}", flush=True)
        else:
            x = raw_frame(train, schema)
            if name == "lgbm":
                oof = cross_validate_raw(lambda: PlainLightGBM(cfg.base.seed, args.threads),
                                         x, y, folds)
            else:
                from pytabkit import RealMLP_TD_Regressor, TabM_D_Regressor

                cls = RealMLP_TD_Regressor if name == "realmlp" else TabM_D_Regressor
                oof = cross_validate_raw(
                    lambda cls=cls: MedianImputed(cls(random_state=cfg.base.seed,
                                                      n_threads=args.threads, device="cpu",
                                                      **options)),
                    x, y, folds)
        seconds = time.monotonic() - started
        print(f"| {name} | {rmse(y[scored], oof[scored]):.5f} | {rmse(y[kept], oof[kept]):.5f} | "
              f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
