"""The LightGBM reference on a built project's folds, with and without the refit on all
fitting rows, over several seeds (its early stopping on a tenth of each fold is noisy on
small data). Prints OOF RMSE per seed and the mean; asserts nothing.

    .venv/bin/python benchmarks/gbm_reference.py .               # House Prices, after run.sh
    .venv/bin/python benchmarks/gbm_reference.py /tmp/loans --seeds 0 1 2 42
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pipeline.config import load_config
from pipeline.cv import cross_validate_estimator, fit_fold_features, setup_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import read_json
from pipeline.plan import Plan
from pipeline.reference import gbm_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a project dvc repro has built")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 42])
    args = parser.parse_args()
    root = args.project.resolve()
    cfg = Plan.from_dict(read_json(root / "data" / "plan" / "plan.json")).apply(
        load_config(root / "params.yaml"))
    prepared = load_prepared(root / "data" / "prepared")
    setup = setup_folds(prepared.train, prepared.schema, cfg)
    features, codes = setup.features, 0
    if cfg.reference.gbm_categoricals == "native":  # the tree view, as the reference stage
        features = fit_fold_features(prepared.train, setup.folds, prepared.schema,
                                     cfg.features, cfg.base.seed, trees=True)
        codes = features.n_categorical
    for refit in (False, True):
        scores = []
        for seed in args.seeds:
            model = gbm_reference(cfg.reference.replace({"gbm_refit": refit}, "reference."),
                                  seed, n_categorical=codes)
            started = time.monotonic()
            result = cross_validate_estimator(features, setup.y, setup.folds, model)
            scores.append(result.score)
            print(f"refit {refit!s:5} seed {seed:3}: OOF RMSE {result.score:.5f} "
                  f"({result.score_fit_rows:.5f} without excluded rows), "
                  f"{time.monotonic() - started:.0f} s", flush=True)
        print(f"refit {refit!s:5} mean over {len(scores)} seeds: {np.mean(scores):.5f}")


if __name__ == "__main__":
    main()
