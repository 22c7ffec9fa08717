"""What each model choice does to the MLP alone, on one competition, on the pipeline's folds.

Each variant is params.yaml's model (`model:`, `features:`, at the sizes the plan's rule picks
from the rows unless a variant sets them) with some keys changed; every variant is
cross-validated on the same folds (rows excluded from fitting are only scored), one seed per
fold unless --seeds, and its out-of-fold RMSE printed on all rows and on the fit rows, with
its seconds. Fold preprocessing is fitted once per distinct `features:` setting.

    .venv/bin/python benchmarks/ablation.py .                          # House Prices (repo)
    .venv/bin/python benchmarks/ablation.py ../shared/data/loans \\
        --variant recipe model.depth=3 model.activation=mish --variant "no pbld" ...
    .venv/bin/python benchmarks/ablation.py . --base model.depth=3 --variant deeper \\
        model.depth=4

`--base` changes every variant (the first row is the base itself); each `--variant NAME
KEY=VALUE ...` then changes the base. Prints figures; asserts nothing. Run it on a quiet
machine; the seconds of one row are only comparable with rows of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
import yaml
from yardstick import competition_params, cpu_kind

from pipeline.config import config_from_dict
from pipeline.cv import cross_validate_mlp, fit_fold_features, make_folds, model_target
from pipeline.data.validate import load_competition
from pipeline.metrics import rmse
from pipeline.plan import resolve_model


def changes_of(pairs: list[str]) -> dict:
    """["model.depth=3", ...] -> {"model.depth": 3, ...} (YAML values)."""
    return {k: yaml.safe_load(v) for k, v in (p.split("=", 1) for p in pairs)}


def with_changes(params: dict, changes: dict) -> dict:
    out = json.loads(json.dumps(params))
    for key, value in changes.items():
        section, name = key.split(".", 1)
        out[section][name] = value
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a competition folder, or the repository")
    parser.add_argument("--base", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--variant", nargs="+", action="append", default=[],
                        metavar="NAME KEY=VALUE")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per fold")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = with_changes(competition_params(args.folder), changes_of(args.base))
    cfg = config_from_dict(params)
    train, _, schema = load_competition(cfg.data)
    folds = make_folds(train, cfg.cv.n_folds, cfg.base.seed, cfg.features.fit_exclude)
    y = model_target(train, schema)
    kept = ~folds.excluded
    print(f"{args.folder.resolve().name}: {len(train)} rows, {folds.n_folds} folds, "
          f"{args.seeds} seed(s); {args.threads} threads, {cpu_kind()}; base changes "
          f"{args.base or 'none'}", flush=True)
    print("| variant | OOF RMSE all rows | fit rows | seconds |\n|---|---|---|---|", flush=True)
    features: dict[str, object] = {}
    for name, *pairs in [["base"], *args.variant]:
        variant = config_from_dict(with_changes(params, changes_of(pairs)))
        key = json.dumps(variant.features.model_dump(mode="json"), sort_keys=True)
        if key not in features:
            features[key] = fit_fold_features(train, folds, schema, variant.features,
                                              variant.base.seed)
        model = resolve_model(variant.model, len(folds.fit_rows[0]))
        started = time.monotonic()
        result = cross_validate_mlp(features[key], y, folds, model, variant.base.seed,
                                    n_seeds=args.seeds)
        label = name if not pairs else f"{name} ({' '.join(pairs)})"
        print(f"| {label} | {result.score:.5f} | {rmse(y[kept], result.oof[kept]):.5f} | "
              f"{time.monotonic() - started:.0f} |", flush=True)


if __name__ == "__main__":
    main()
