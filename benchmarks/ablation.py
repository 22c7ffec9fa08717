"""What each model choice does to the MLP alone, on a project `dvc repro` has built: the
tuned params of its study (data/tune/best_params.json) at the plan's sizes, one seed, the
standard feature view, on the pipeline's own folds; then the same with each variant's params
changed. Prints the OOF RMSE of each beside the references' (data/reference) on those folds.

    .venv/bin/python benchmarks/ablation.py .                      # House Prices (this repo)
    .venv/bin/python benchmarks/ablation.py /tmp/loans             # competition.py --keep
    .venv/bin/python benchmarks/ablation.py . --variant wide model.width=1024 model.depth=2

Each variant is `name key=value ...` (YAML values); the default variants are the ablations
in docs/model.md. Prints figures; asserts nothing. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import yaml

from pipeline.config import load_config
from pipeline.cv import cross_validate_mlp, setup_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import read_json
from pipeline.plan import Plan
from pipeline.runtime import set_threads

DEFAULT_VARIANTS = {
    "periodic embeddings": {"model.numeric_embedding": "periodic"},
    "periodic, frequency scale 0.1": {"model.numeric_embedding": "periodic",
                                      "model.embedding_scale": 0.1},
}


def cpu_flags() -> str:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    return "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else "no AVX2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a project dvc repro has built")
    parser.add_argument("--variant", nargs="+", action="append", metavar="NAME KEY=VALUE",
                        help="a variant: its name, then the params it changes")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per fold model")
    args = parser.parse_args()
    variants = DEFAULT_VARIANTS if not args.variant else {
        v[0]: {k: yaml.safe_load(x) for k, x in (s.split("=", 1) for s in v[1:])}
        for v in args.variant}
    root = args.project.resolve()
    cfg = load_config(root / "params.yaml")
    plan = Plan.from_dict(read_json(root / "data" / "plan" / "plan.json"))
    cfg = plan.apply(cfg)
    best = read_json(root / "data" / "tune" / "best_params.json")
    references = read_json(root / "data" / "reference" / "reference_metrics.json")
    set_threads(None, cfg.base.threads)
    prepared = load_prepared(root / "data" / "prepared")
    setup = setup_folds(prepared.train, prepared.schema, cfg)
    tuned = cfg.model.replace(best["params"], "model.")
    print(f"{root.name}: {len(setup.y)} rows, {setup.features.width} input columns; "
          f"{torch.get_num_threads()} threads, {cpu_flags()}; trial {best['trial']} of "
          f"study {best['study']}, {tuned.epochs} epochs, batch {tuned.batch_size}, "
          f"{args.seeds} seed(s), standard view", flush=True)
    print("| model | OOF RMSE all rows | without excluded rows | seconds |")
    print("|---|---|---|---|")
    for name, scores in references.items():
        print(f"| reference: {name} | {scores['oof_rmse']:.5f} | "
              f"{scores['oof_rmse_fit_rows']:.5f} | |")
    for name, changes in {"MLP, tuned params": {}, **variants}.items():
        model = tuned.replace({k.removeprefix("model."): v for k, v in changes.items()},
                              "model.")
        started = time.monotonic()
        result = cross_validate_mlp(setup.features, setup.y, setup.folds, model,
                                    cfg.base.seed, n_seeds=args.seeds, device=cfg.base.device)
        seconds = time.monotonic() - started
        label = name if not changes else f"{name} ({json.dumps(changes)})"
        print(f"| {label} | {result.score:.5f} | {result.score_fit_rows:.5f} | "
              f"{seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
