"""Throughput at scale: a 5-fold epoch against the matmul bound, cost per row from 10 k to
1 M rows, and peak memory, at the sizes the plan's rule picks.

    .venv/bin/python benchmarks/scale.py ../shared/data/flights   # a competition folder
    .venv/bin/python benchmarks/scale.py ../shared/data/flights --rows 10000 100000 1000000

Prints figures; asserts nothing. Run it on a quiet machine: other load skews every ratio.
Each measurement runs in a fresh process, so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import DataConfig, config_from_dict, read_yaml  # noqa: E402
from pipeline.cv import make_folds, setup_folds  # noqa: E402
from pipeline.data.schema import infer_schema  # noqa: E402
from pipeline.data.validate import coerce, load_competition  # noqa: E402
from pipeline.nn.train import fit_mlps  # noqa: E402
from pipeline.plan import batch_size, sized  # noqa: E402

EPOCHS = 3  # one warm-up, then the fastest of the others counts
SEED = 0
# the default params' network, trained at a constant rate for a few epochs
MODEL = {**read_yaml(ROOT / "params.yaml")["model"], "epochs": EPOCHS, "eval_every": EPOCHS,
         "lr_schedule": "constant"}


def competition_config(folder: Path) -> dict:
    """params for a shared competition folder: the id is `id` (or `Id`), the target the
    sample submission's second column, RMSE unless SOURCE.md says log."""
    sample = pd.read_csv(folder / "sample_submission.csv", nrows=2)
    # the first line naming the metric; flights' says "(not a log scale: ...)"
    metric = re.search(r"^.*\bmetric\b.*$", (folder / "SOURCE.md").read_text(), re.I | re.M)
    said = metric.group(0).lower() if metric else ""
    log = bool(re.search(r"\blog", said)) and "not a log" not in said
    return {"data": {"train": str(folder / "train.csv"), "test": str(folder / "test.csv"),
                     "sample_submission": str(folder / "sample_submission.csv"),
                     "id_column": sample.columns[0], "target": sample.columns[1],
                     "log_target": bool(log)},
            "model": MODEL}


def synthetic(rows: int, columns: int, seed: int = SEED) -> tuple[pd.DataFrame, DataConfig]:
    """Rows of `columns` columns: four fifths numbers, one fifth categories of 8 levels."""
    rng = np.random.default_rng(seed)
    n_cat = columns // 5
    numbers = rng.normal(size=(rows, columns - n_cat)).astype(np.float32)
    frame = pd.DataFrame(numbers, columns=[f"x{i}" for i in range(columns - n_cat)])
    for j in range(n_cat):
        frame[f"c{j}"] = pd.Series(rng.integers(0, 8, rows)).map(lambda v: f"L{v}")
    frame["y"] = numbers[:, 0] + np.sin(numbers[:, 1]) + rng.normal(0, 0.5, rows)
    frame.insert(0, "id", np.arange(rows))
    return frame, DataConfig(id_column="id", target="y")


def time_epochs(setup, cfg) -> tuple[float, dict]:
    """Seconds of the fastest epoch of every fold at once, and the job's shape."""
    stamps: dict[int, float] = {}
    y = torch.as_tensor(setup.y, dtype=torch.float32)
    fit_mlps(setup.features.x, y, setup.folds.fit_rows, None, cfg.model, SEED,
             on_epoch=lambda e: stamps.__setitem__(e, time.perf_counter()))
    epoch = min(stamps[e + 1] - stamps[e] for e in range(1, EPOCHS))
    shape = {"folds": setup.folds.n_folds, "fit_rows": int(np.mean([len(r) for r in
                                                                   setup.folds.fit_rows])),
             "inputs": setup.features.width, "width": cfg.model.width,
             "depth": cfg.model.depth, "batch": cfg.model.batch_size}
    return epoch, shape


def epoch_flops(shape: dict) -> float:
    """Matmul FLOPs a trainer must do in one epoch: forward and both backward products of
    every layer but the first's gradient with respect to the data."""
    first = shape["inputs"] * shape["width"]
    rest = (shape["depth"] - 1) * shape["width"] ** 2 + shape["width"]
    return 2 * (2 * first + 3 * rest) * shape["fit_rows"] * shape["folds"]


def matmul_rate(shape: dict, repeats: int = 5) -> float:
    """Best GFLOP/s of the job's dominant product, batched over the folds as the trainer
    does: [K, batch, inputs] x [K, inputs, width]."""
    k, b, d, w = shape["folds"], shape["batch"], shape["inputs"], shape["width"]
    a, m, bias = torch.randn(k, b, d), torch.randn(k, d, w), torch.zeros(k, 1, w)
    for _ in range(20):
        torch.baddbmm(bias, a, m)
    best = 0.0
    for _ in range(repeats):
        n = max(10, int(2e9 / (2 * k * b * d * w)))
        start = time.perf_counter()
        for _ in range(n):
            torch.baddbmm(bias, a, m)
        best = max(best, 2 * k * b * d * w * n / (time.perf_counter() - start) / 1e9)
    return best


def measure(kind: str, arg: str, columns: int) -> dict:
    """One measurement, in this process: 'competition' (a folder) or 'rows' (a count)."""
    if kind == "competition":
        cfg = config_from_dict(competition_config(Path(arg)))
        train, _, schema = load_competition(cfg.data)
    else:
        frame, data = synthetic(int(arg), columns)
        cfg = config_from_dict({"data": data.model_dump(), "model": MODEL})
        schema = infer_schema(frame, cfg.data)
        train = coerce(frame, schema, "synthetic")
    folds = make_folds(train, cfg.cv.n_folds, SEED)
    cfg = sized(cfg, len(train)).replace({"model": cfg.model.replace(
        {"batch_size": batch_size(cfg, len(folds.fit_rows[0]), "cpu"), "epochs": EPOCHS,
         "eval_every": EPOCHS, "lr": 1e-3})})
    start = time.perf_counter()
    setup = setup_folds(train, schema, cfg)
    features = time.perf_counter() - start
    epoch, shape = time_epochs(setup, cfg)
    rate = matmul_rate(shape)
    bound = epoch_flops(shape) / (rate * 1e9)
    return {"rows": len(train), **shape, "epoch_s": epoch, "features_s": features,
            "us_per_row": 1e6 * epoch / (shape["fit_rows"] * shape["folds"]),
            "gflops": rate, "bound_s": bound, "ratio": epoch / bound,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run_child(kind: str, arg: str, columns: int, threads: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, arg, "--columns",
                          str(columns), "--threads", str(threads)], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def line(label: str, r: dict) -> str:
    return (f"{label:>22s} {r['rows']:>9d} rows  {r['inputs']:>4d} inputs  batch {r['batch']:>5d}"
            f"  epoch {r['epoch_s']:7.2f} s  {r['us_per_row']:6.2f} us/row  bound "
            f"{r['bound_s']:6.2f} s ({r['gflops']:.0f} GFLOP/s)  {r['ratio']:5.2f}x bound  "
            f"peak RSS {r['peak_rss_mb']:6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("competition", type=Path, nargs="?",
                        help="a competition folder (train.csv, sample_submission.csv)")
    parser.add_argument("--rows", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(measure(args.child[0], args.child[1], args.columns)), flush=True)
        return
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    simd = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"{simd}; torch {torch.__version__}, {args.threads} threads", flush=True)
    print(f"model: params.yaml's network (depth {MODEL['depth']}, width {MODEL['width']}) at "
          f"the plan's batch size; {EPOCHS} epochs, the fastest after the first counts",
          flush=True)
    if args.competition:
        print(line(args.competition.name, run_child("competition", str(args.competition),
                                                    args.columns, args.threads)), flush=True)
    base = None
    for rows in args.rows:
        r = run_child("rows", str(rows), args.columns, args.threads)
        base = base or r["us_per_row"]
        print(line(f"synthetic x{args.columns}", r) + f"  per row {r['us_per_row'] / base:.2f}x",
              flush=True)


if __name__ == "__main__":
    main()
