"""How fast the project's trainer runs a 5-fold job, against a plain PyTorch loop and the
machine's matrix-multiply limit; how it scales with rows; what Optuna pruning saves.

    .venv/bin/python benchmarks/trainer_speed.py                 # speed + scaling (~5 min)
    .venv/bin/python benchmarks/trainer_speed.py --pruning       # + the 40-trial studies (~25 min)

Prints figures; asserts nothing. Run it on a quiet machine: other load skews every ratio.
The job (the same for both trainers): the House Prices training rows through the pipeline's
fold-fitted preprocessing, 5 folds, one hidden layer of 512, minibatch 128, 300 epochs, AdamW
at a constant learning rate, no dropout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import ModelConfig, PrunerConfig, load_config  # noqa: E402
from pipeline.cv import setup_folds  # noqa: E402
from pipeline.data.validate import load_competition  # noqa: E402
from pipeline.metrics import rmse  # noqa: E402
from pipeline.nn.train import fit_mlps  # noqa: E402
from pipeline.tune.objective import make_objective, make_pruner  # noqa: E402
from pipeline.tune.study import open_study, quiet_optuna, run_study  # noqa: E402

EPOCHS = int(os.environ.get("BENCH_EPOCHS", 300))  # fewer for a quick look; figures use 300
JOB = ModelConfig(depth=1, width=512, dropout=0.0, epochs=EPOCHS, batch_size=128, lr=1e-3,
                  weight_decay=1e-2, lr_schedule="constant", eval_every=EPOCHS)
SEED = 0


def job_flops(n_fit_rows: list[int], n_inputs: int, cfg: ModelConfig,
              input_gradient: bool = True) -> float:
    """Matmul FLOPs of the job. With `input_gradient`, the issue's count: forward + 2x backward
    for every layer. Without: the first layer's gradient with respect to the data (which no
    trainer needs) left out, i.e. what any trainer must compute."""
    first = n_inputs * cfg.width
    rest = (cfg.depth - 1) * cfg.width ** 2 + cfg.width
    macs = 3 * (first + rest) if input_gradient else 2 * first + 3 * rest
    return 2 * macs * sum(n_fit_rows) * cfg.epochs


def matmul_rate(n_inputs: int, cfg: ModelConfig, repeats: int = 7) -> float:
    """Best float32 GFLOP/s of the job's dominant product: [batch, inputs] x [inputs, width]."""
    a = torch.randn(cfg.batch_size, n_inputs)
    w = torch.randn(n_inputs, cfg.width)
    for _ in range(50):
        a @ w
    best = 0.0
    for _ in range(repeats):
        n = 400
        start = time.perf_counter()
        for _ in range(n):
            a @ w
        seconds = (time.perf_counter() - start) / n
        best = max(best, 2 * cfg.batch_size * n_inputs * cfg.width / seconds / 1e9)
    return best


def plain_loop(x: torch.Tensor, y: torch.Tensor, fit_rows: list[np.ndarray],
               val_rows: list[np.ndarray], cfg: ModelConfig) -> np.ndarray:
    """The textbook per-fold loop: a DataLoader, nn.Sequential, one fold after another."""
    oof = np.empty(len(y))
    for k, (fit, val) in enumerate(zip(fit_rows, val_rows, strict=True)):
        torch.manual_seed(SEED + k)
        mean, std = y[fit].mean(), y[fit].std(unbiased=False)
        model = nn.Sequential(nn.Linear(x.shape[2], cfg.width), nn.ReLU(),
                              nn.Linear(cfg.width, 1))
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        loader = DataLoader(TensorDataset(x[k, fit], (y[fit] - mean) / std),
                            batch_size=cfg.batch_size, shuffle=True)
        for _ in range(cfg.epochs):
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(xb).squeeze(-1), yb)
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            oof[val] = (model(x[k, val]).squeeze(-1) * std + mean).numpy()
    return oof


def project_trainer(x: torch.Tensor, y: torch.Tensor, fit_rows: list[np.ndarray],
                    val_rows: list[np.ndarray], cfg: ModelConfig,
                    onehot_lookup: bool = True) -> np.ndarray:
    trained = fit_mlps(x, y, fit_rows, val_rows, cfg, SEED, onehot_lookup=onehot_lookup)
    oof = np.empty(len(y))
    for rows, pred in zip(val_rows, trained.val_predictions, strict=True):
        oof[rows] = pred
    return oof


def speed(repeats: int) -> dict:
    cfg = load_config(ROOT / "params.yaml")
    train, _, schema = load_competition(cfg.data)
    setup = setup_folds(train, schema, cfg)
    x, y = setup.features.x, torch.as_tensor(setup.y, dtype=torch.float32)
    fit_rows, val_rows = setup.folds.fit_rows, setup.folds.val_rows
    flops = job_flops([len(r) for r in fit_rows], x.shape[2], JOB)
    needed = job_flops([len(r) for r in fit_rows], x.shape[2], JOB, input_gradient=False)
    rates = [matmul_rate(x.shape[2], JOB)]
    results = {"rows": len(y), "inputs": x.shape[2], "folds": len(fit_rows),
               "tflop": flops / 1e12, "needed_tflop": needed / 1e12}
    warm_up = JOB.replace({"epochs": 1, "eval_every": 1})
    trainers = {"plain": plain_loop, "project": project_trainer,
                # the same trainer multiplying the one-hot columns' zeros too: what the
                # lookups (pipeline/onehot.py) save
                "dense": lambda *a: project_trainer(*a, onehot_lookup=False)}
    for run in trainers.values():
        run(x, y, fit_rows, val_rows, warm_up)  # one-time costs (lazy imports) out of the timing
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(repeats):  # interleaved, so a slow spell of the machine hits both
        for name, run in trainers.items():
            start = time.perf_counter()
            oof = run(x, y, fit_rows, val_rows, JOB)
            times[name].append(time.perf_counter() - start)
            results[f"{name}_oof"] = rmse(setup.y, oof)  # the same every repeat (seeded)
            rates.append(matmul_rate(x.shape[2], JOB))
            print(f"  {name:8s} {times[name][-1]:7.1f} s   OOF log-RMSE "
                  f"{results[f'{name}_oof']:.4f}", flush=True)
    for name in trainers:  # the best of the repeats: other load only adds time
        results[f"{name}_s"] = min(times[name])
    # the best of the rates measured before and after each trainer: other load only lowers it
    results["matmul_gflops_measured"] = rates
    results["matmul_gflops"] = max(rates)
    results["bound_s"] = flops / (max(rates) * 1e9)
    results["needed_s"] = needed / (max(rates) * 1e9)
    return results


def scaling_point(multiple: int, epochs: int) -> dict:
    """Time per epoch per row and peak memory on synthetic House-Prices-shaped data.

    The epoch time is marginal: (time of a 2E-epoch fit - time of an E-epoch fit) / E, each
    the best of three, so the per-fit costs (validation, final predictions, set-up) are not
    counted as epochs; they are linear in the rows too, and reported as `fit_overhead_s`."""
    n_rows, folds = 1460 * multiple, 5
    g = torch.Generator().manual_seed(0)
    # one shared matrix (the trainer's own cost), laid out as the House Prices features: 58
    # numeric columns, then 26 categorical columns one-hot encoded into 199 columns
    levels = torch.tensor([8] * 17 + [7] * 9)  # 199 columns in all
    first = 58 + torch.cumsum(levels, 0) - levels  # each group's first column
    codes = (torch.rand(n_rows, len(levels), generator=g) * levels).long()
    x = torch.zeros(n_rows, 58 + int(levels.sum()))
    x[:, :58] = torch.randn(n_rows, 58, generator=g)
    x.scatter_(1, first + codes, 1.0)
    y = x[:, :8].sum(1) + codes[:, :4].sum(1) / 8 + 0.1 * torch.randn(n_rows, generator=g)
    order = np.random.default_rng(0).permutation(n_rows)
    val_rows = np.array_split(order, folds)
    fit_rows = [np.setdiff1d(order, v) for v in val_rows]

    def timed_fit(n_epochs: int) -> float:
        cfg = JOB.replace({"epochs": n_epochs, "eval_every": n_epochs})
        start = time.perf_counter()
        fit_mlps(x, y, fit_rows, val_rows, cfg, SEED)
        return time.perf_counter() - start

    timed_fit(1)  # warm up
    # the best of three of each: other load only adds time
    short = min(timed_fit(epochs) for _ in range(3))
    long = min(timed_fit(2 * epochs) for _ in range(3))
    epoch_s = (long - short) / epochs
    rows_seen = sum(len(r) for r in fit_rows)
    return {"multiple": multiple, "rows": n_rows, "epoch_s": epoch_s,
            "us_per_row_epoch": epoch_s / rows_seen * 1e6,
            "fit_overhead_s": short - epochs * epoch_s,
            "data_mb": x.numel() * 4 / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def scaling(threads: int) -> list[dict]:
    """Each size in a fresh process so peak memory is its own."""
    points = []
    for multiple, epochs in ((1, 100), (10, 10), (100, 2)):  # ~3 s of training each
        out = subprocess.run([sys.executable, __file__, "--scaling-point", str(multiple),
                              "--epochs", str(epochs), "--threads", str(threads)],
                             capture_output=True, text=True, check=True)
        points.append(json.loads(out.stdout.strip().splitlines()[-1]))
        p = points[-1]
        print(f"  {p['multiple']:4d}x {p['rows']:7d} rows  {p['epoch_s']:8.2f} s/epoch  "
              f"{p['us_per_row_epoch']:6.2f} us/row/epoch  per-fit overhead "
              f"{p['fit_overhead_s']:6.2f} s  data {p['data_mb']:6.0f} MB  "
              f"peak RSS {p['peak_rss_mb']:6.0f} MB", flush=True)
    return points


def pruning(n_trials: int, overrides: dict, skip_unpruned: bool) -> dict:
    """The default study, 40 trials, with the configured pruner and without, timed."""
    cfg = load_config(ROOT / "params.yaml")
    train, _, schema = load_competition(cfg.data)
    setup = setup_folds(train, schema, cfg)
    quiet_optuna()
    out = {}
    configured = cfg.tune.pruner.replace(overrides)
    print(f"  pruner: {configured}", flush=True)
    studies = [("unpruned", PrunerConfig(kind="none"))] * (not skip_unpruned) + \
        [("pruned", configured)]
    for label, pruner in studies:
        run_cfg = cfg.replace({"tune": cfg.tune.replace({"pruner": pruner})})
        study = open_study(None, label, cfg.base.seed, cfg.tune.n_startup_trials,
                           make_pruner(pruner))
        objective = make_objective(setup.features, setup.y, setup.folds, run_cfg)
        start = time.perf_counter()
        run_study(study, objective, n_trials, None, 1)
        seconds = time.perf_counter() - start
        states = [t.state.name for t in study.trials]
        # epochs trained: a load-independent measure of the work, beside the wall time
        epochs = sum(max(t.intermediate_values) if t.state.name == "PRUNED"
                     else t.params.get("epochs", cfg.model.epochs) for t in study.trials)
        out[label] = {"seconds": seconds, "best": study.best_value,
                      "pruned": states.count("PRUNED"), "epochs": epochs}
        print(f"  {label:9s} {seconds:7.1f} s  best OOF {study.best_value:.4f}  "
              f"pruned {states.count('PRUNED')}/{n_trials}  epochs trained {epochs}",
              flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--pruning", action="store_true", help="also run the 40-trial studies")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of each trainer (the best counts)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--pruner", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override tune.pruner settings, e.g. n_warmup_steps=30 "
                             "kind=percentile percentile=25")
    parser.add_argument("--skip-unpruned", action="store_true",
                        help="only the pruned study (to try pruner settings)")
    parser.add_argument("--scaling-point", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.scaling_point:
        print(json.dumps(scaling_point(args.scaling_point, args.epochs)))
        return

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}, {args.threads} threads; load average before: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    if not args.skip_speed:
        print(f"5-fold job (House Prices rows, width 512, batch 128, {EPOCHS} epochs):")
        r = speed(args.repeats)
        print(f"  matmul rate {r['matmul_gflops']:.0f} GFLOP/s (best of "
              + "/".join(f"{v:.0f}" for v in r["matmul_gflops_measured"])
              + f"); job {r['tflop']:.2f} TFLOP (forward + 2x backward) -> bound "
              f"{r['bound_s']:.1f} s; without the first layer's input gradient, which no "
              f"trainer computes: {r['needed_tflop']:.2f} TFLOP -> {r['needed_s']:.1f} s")
        print(f"  best of {args.repeats}: plain {r['plain_s']:.1f} s, "
              f"project {r['project_s']:.1f} s, project with dense inputs {r['dense_s']:.1f} s "
              f"(the lookups save {r['dense_s'] / r['project_s']:.2f}x)")
        print(f"  speedup over plain loop: {r['plain_s'] / r['project_s']:.2f}x; "
              f"project / bound: {r['project_s'] / r['bound_s']:.2f}x "
              f"({r['project_s'] / r['needed_s']:.2f}x of the needed arithmetic); "
              f"OOF difference: {abs(r['project_oof'] - r['plain_oof']):.4f}")
        print(f"  (the bound counts every multiply of the dense product; the lookups skip "
              f"the one-hot columns' zeros. With dense inputs: "
              f"{r['plain_s'] / r['dense_s']:.2f}x over plain, {r['dense_s'] / r['bound_s']:.2f}x"
              f" of the bound, OOF difference {abs(r['dense_oof'] - r['plain_oof']):.4f})")
        print("scaling (synthetic rows shaped like House Prices, one shared matrix):")
        points = scaling(args.threads)
        base = points[0]["us_per_row_epoch"]
        print("  per-row cost vs 1x: " + ", ".join(
            f"{p['multiple']}x {p['us_per_row_epoch'] / base:.2f}" for p in points))
    if args.pruning:
        print(f"Optuna, {args.trials} trials of the default study (params.yaml):")
        overrides = {key: yaml.safe_load(value)  # as params.yaml would read the value
                     for key, value in (item.split("=", 1) for item in args.pruner)}
        p = pruning(args.trials, overrides, args.skip_unpruned)
        if args.skip_unpruned:
            return
        pruned, unpruned = p["pruned"], p["unpruned"]
        print(f"  pruned/unpruned wall time: {pruned['seconds'] / unpruned['seconds']:.2f}; "
              f"epochs: {pruned['epochs'] / unpruned['epochs']:.2f}; "
              f"best OOF difference: {pruned['best'] - unpruned['best']:+.4f}")


if __name__ == "__main__":
    main()
