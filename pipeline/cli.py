"""The command line: parse, dispatch to `pipeline.stages.<stage>.run`, show progress and errors.

Every dvc.yaml stage is one subcommand; each says what it does when it starts and how long it
took when it ends. A bad input ends with one line naming the file, column, line or params
key, and exit code 2; Ctrl-C (or SIGTERM) with exit code 130 (143). The libraries' messages
that tell a user of the pipeline nothing are held back here, at the edge; `-v` shows them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import signal
import sys
import time
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from tqdm.contrib.logging import logging_redirect_tqdm

from pipeline.config import ConfigError, load_config
from pipeline.data.errors import DataError
from pipeline.io import ModelFileError, WriteError
from pipeline.services import ServiceError
from pipeline.submission import SubmissionError

log = logging.getLogger("pipeline")

# subcommand -> (module in pipeline.stages, what it does)
STAGES = {
    "prepare": ("prepare", "validate the raw CSVs, infer column kinds, write typed frames"),
    "plan": ("plan", "size the model and split the time budget from the data and one "
                     "measured epoch; write plan.json"),
    "tune": ("tune", "run or resume the Optuna study (K-fold CV objective); write "
                     "best_params.json"),
    "tune-worker": ("tune_worker", "add trials to the tune stage's study from this process "
                                   "(or --processes N); writes no output: start as many as "
                                   "you like, on any machine"),
    "reference": ("reference", "cross-validate the reference models (linear, gradient "
                               "boosting, at most the plan's rounds) on the MLP's folds"),
    "train": ("train", "train the final model with the best params; write the model and its "
                       "OOF predictions; log and register it in MLflow"),
    "predict": ("predict", "predict the test file; validate and write the submission CSV"),
    "evaluate": ("evaluate", "write headline.json and metrics.json (model beside references) "
                             "and the plots"),
    "summary": ("summary", "print the scores and where the results are"),
}
EXIT_BAD_INPUT = 2
# Without -v: MLflow's progress bar for the artifacts it reads back (the model's input example
# validation) and its INFO lines (creating its tables, validating that example)...
QUIET_ENVIRONMENT = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
                     "MLFLOW_LOGGING_LEVEL": "WARNING"}
# ... and these messages (logger, start of the message): MLflow's caution that a Python model
# object is pickled (the final model is this pipeline's own, logged to the user's own store:
# docs/mlflow.md says to load models only from trusted stores); matplotlib's note, once per
# fresh environment, that it builds its font cache
QUIET_MESSAGES = (
    ("mlflow.pyfunc", "Passing a Python object as `python_model`"),
    ("matplotlib.font_manager", "Matplotlib is building the font cache"),
)
# Python warnings (category, message regex) that say nothing to a user of the pipeline
QUIET_WARNINGS = (
    (UserWarning, r"Hint: Inferred schema contains integer column"),  # MLflow, on the Id column
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Help that shows every option's default."""


def program_name() -> str:
    """The program as the user invoked it: `tabpipe`, or `python -m pipeline`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "tabpipe"
    return "python -m pipeline" if name in ("__main__.py", "-m", "-c", "") else name


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=program_name(), formatter_class=_Formatter,
        description="From two competition CSVs to a Kaggle submission: each subcommand is "
                    "one stage of dvc.yaml (run them all with `dvc repro`).",
        epilog="Options may come before or after the subcommand. "
               "`%(prog)s <subcommand> --help` lists a subcommand's options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="SUBCOMMAND",
                                title="subcommands")
    cmd = {}
    for name, (_, text) in STAGES.items():
        cmd[name] = sub.add_parser(name, help=text, description=text, formatter_class=_Formatter)
        _common(cmd[name], top=False)
    cmd["prepare"].add_argument("--out", type=Path, default=Path("data/prepared"),
                                help="output directory: typed frames and schema.json")
    for name in ("plan", "tune", "tune-worker", "reference", "train"):
        cmd[name].add_argument("--prepared", type=Path, default=Path("data/prepared"),
                               help="the prepare stage's output directory")
    for name in ("tune", "tune-worker", "reference", "train", "summary"):
        cmd[name].add_argument("--plan", type=Path, default=Path("data/plan"),
                               help="the plan stage's output directory")
    cmd["plan"].add_argument("--out", type=Path, default=Path("data/plan"),
                             help="output directory: plan.json")
    cmd["tune"].add_argument("--out", type=Path, default=Path("data/tune"),
                             help="output directory: best_params.json, trials.csv")
    for name in ("tune", "tune-worker"):
        cmd[name].add_argument("--storage-dir", type=Path, default=Path("data/optuna"),
                               help="where the default SQLite study storage lives "
                                    "(OPTUNA_STORAGE or tune.storage override it)")
    worker = cmd["tune-worker"]
    worker.add_argument("--processes", type=_positive, default=1,
                        help="worker processes to start on this machine")
    worker.add_argument("--threads", type=_positive, default=None,
                        help="torch threads per process (default: base.threads, else the "
                             "cores divided among the processes)")
    worker.add_argument("--n-trials", type=_positive, default=None,
                        help="at most this many trials per process (default: until the study "
                             "holds tune.n_trials finished trials)")
    cmd["reference"].add_argument("--out", type=Path, default=Path("data/reference"),
                                  help="output directory: scores, OOF predictions, models")
    cmd["train"].add_argument("--best-params", type=Path,
                              default=Path("data/tune/best_params.json"),
                              help="the tune stage's best params")
    cmd["train"].add_argument("--references", type=Path,
                              default=Path("data/reference/reference_models.pkl"),
                              help="fitted reference models to blend in (ensemble.blend_with)")
    cmd["train"].add_argument("--out", type=Path, default=Path("models"),
                              help="output directory: model.pkl, OOF predictions, curves")
    cmd["predict"].add_argument("--model", type=Path, default=Path("models/model.pkl"),
                                help="the final model")
    cmd["predict"].add_argument("--out", type=Path, default=Path("data/submission.csv"),
                                help="the submission CSV")
    for name in ("evaluate", "summary"):
        cmd[name].add_argument("--train-dir", type=Path, default=Path("models"),
                               help="the train stage's output directory")
        cmd[name].add_argument("--tune-dir", type=Path, default=Path("data/tune"),
                               help="the tune stage's output directory")
    for name in ("evaluate", "summary"):
        cmd[name].add_argument("--reference-dir", type=Path, default=Path("data/reference"),
                               help="the reference stage's output directory")
    cmd["evaluate"].add_argument("--out", type=Path, default=Path("reports"),
                                 help="output directory: metrics.json, learning_curve.csv, "
                                      "plots/")
    cmd["summary"].add_argument("--metrics", type=Path, default=Path("reports/metrics.json"),
                                help="the evaluate stage's metrics")
    cmd["summary"].add_argument("--submission", type=Path, default=Path("data/submission.csv"),
                                help="the submission CSV")
    cmd["summary"].add_argument("--started", type=float, default=None,
                                help="when the run began (Unix time), for the budget line")
    return parser


def _common(parser: argparse.ArgumentParser, top: bool) -> None:
    """Options accepted before and after the subcommand (after it, they win): the top-level
    parser holds the defaults, each subcommand's parser only what it was given."""
    given = {} if top else {"default": argparse.SUPPRESS}
    parser.add_argument("--params", type=Path,
                        help="the params file" + ("" if top else " (default: params.yaml)"),
                        **({"default": Path("params.yaml")} if top else given))
    parser.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="only warnings and errors")
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="also the libraries' own messages and warnings")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.quiet, args.verbose = getattr(args, "quiet", False), getattr(args, "verbose", False)
    _setup_logging(args.quiet, args.verbose)
    signal.signal(signal.SIGTERM, _interrupt)  # a scheduler stopping a worker: as Ctrl-C
    started = time.monotonic()
    try:
        cfg = load_config(args.params)
        if args.stage != "summary":
            log.info("%s: %s", args.stage, STAGES[args.stage][1])
        # on a terminal, log lines go above the progress bars instead of through them
        with logging_redirect_tqdm() if sys.stderr.isatty() else contextlib.nullcontext():
            _dispatch(args, cfg)
        if args.stage != "summary":
            log.info("%s: done in %s", args.stage, duration(time.monotonic() - started))
    except (ConfigError, DataError, SubmissionError, ServiceError, ModelFileError,
            WriteError) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as exc:  # a stage's input that its stage has not written yet
        print(f"error: {exc.filename}: file not found (run the stage that writes it first, "
              "or `dvc repro`)", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as exc:
        print("interrupted: finished trials and outputs are saved; run the same command again "
              "to resume", file=sys.stderr)
        return 128 + getattr(exc, "signal_number", signal.SIGINT)
    return 0


def one_line(message: str) -> str:
    """A message as one line whatever it quotes (a path or column name holding a newline)."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def _dispatch(args: argparse.Namespace, cfg: object) -> None:
    # one stage's module is imported, so a stage loads only the libraries it runs
    stage = importlib.import_module(f"pipeline.stages.{STAGES[args.stage][0]}")
    if args.stage == "prepare":
        stage.run(cfg, args.out)
    elif args.stage == "plan":
        stage.run(cfg, args.prepared, args.out)
    elif args.stage == "tune":
        stage.run(cfg, args.prepared, args.plan, args.out, args.storage_dir)
    elif args.stage == "tune-worker" and args.processes > 1:
        code = stage.spawn(cfg, args.params, args.prepared, args.plan, args.storage_dir,
                           args.processes, args.threads, args.n_trials, args.quiet)
        if code:
            sys.exit(code)
    elif args.stage == "tune-worker":
        stage.run(cfg, args.prepared, args.plan, args.storage_dir, args.n_trials, args.threads)
    elif args.stage == "reference":
        stage.run(cfg, args.prepared, args.plan, args.out)
    elif args.stage == "train":
        stage.run(cfg, args.prepared, args.plan, args.best_params, args.references, args.out)
    elif args.stage == "predict":
        stage.run(cfg, args.model, args.out)
    elif args.stage == "evaluate":
        stage.run(cfg, args.train_dir, args.reference_dir, args.tune_dir, args.out)
    elif args.stage == "summary":
        stage.run(cfg, args.metrics, args.tune_dir, args.train_dir, args.submission,
                  args.started, args.plan, args.reference_dir)


def _setup_logging(quiet: bool, verbose: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if verbose:
        return
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)  # read by MLflow when it is imported
    for noisy in ("alembic", "mlflow", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name, start in QUIET_MESSAGES:
        logging.getLogger(name).addFilter(_Drop(start))
    for category, message in QUIET_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


class _Drop(logging.Filter):
    """Drops the records of one logger whose message starts with `start`."""

    def __init__(self, start: str) -> None:
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def duration(seconds: float) -> str:
    """A stage's wall time as a person reads it: 3.2 s, 1 min 24 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s"


def _interrupt(number: int, _frame: object) -> None:
    exc = KeyboardInterrupt()
    exc.signal_number = number
    raise exc


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _version() -> str:
    try:
        return version("tabular-mlp-pipeline")
    except PackageNotFoundError:
        return "unknown"

