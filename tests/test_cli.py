"""The command line as a user meets it: its help, options before or after the subcommand,
its name and version, what it prints; Ctrl-C in a study, a storage or tracking server that
cannot be reached."""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from pipeline.cli import QUIET_ENVIRONMENT, STAGES, build_parser, duration, main
from pipeline.config import load_config
from pipeline.stages import plan, prepare
from pipeline.tune.study import CONNECT_TIMEOUT_SECONDS

from .conftest import REPO, make_houses, small_params, write_competition


def make_project(root: Path, epochs: int = 12, **tune) -> Path:
    train = make_houses(150, seed=1)
    test = make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice")
    write_competition(root / "raw", train, test)
    params = small_params(root / "raw", model={"epochs": epochs, "eval_every": 100},
                          tune={"pruner": {"kind": "none"}, **tune},
                          tracking={"uri": f"sqlite:///{root / 'mlflow.db'}"})
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(root / "params.yaml")
    prepare.run(cfg, root / "prepared")
    plan.run(cfg, root / "prepared", root / "plan")
    return root


def set_trials(root: Path, n: int) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["n_trials"] = n
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def cli(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--params", str(root / "params.yaml"), *args]


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    return {**clean, "PYTHONPATH": str(REPO), **extra}


def tune_args(root: Path) -> list[str]:
    return ["tune", "--prepared", str(root / "prepared"), "--plan", str(root / "plan"),
            "--out", str(root / "tune"), "--storage-dir", str(root / "optuna")]


_storages: dict[Path, optuna.storages.RDBStorage] = {}


def study_trials(root: Path) -> list[optuna.trial.FrozenTrial]:
    url = f"sqlite:///{root / 'optuna' / 'optuna.db'}"
    storage = _storages.setdefault(root, optuna.storages.RDBStorage(url))
    summaries = [s for s in optuna.get_all_study_summaries(storage) if ":" not in s.study_name]
    if not summaries:
        return []
    return optuna.load_study(study_name=summaries[0].study_name, storage=storage).trials


def test_ctrl_c_stops_the_study_cleanly_and_a_rerun_resumes(tmp_path):
    root = make_project(tmp_path, epochs=2000, n_trials=1)
    first = subprocess.run(cli(root, *tune_args(root)), env=env(), capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    best_before = (root / "tune" / "best_params.json").read_bytes()
    set_trials(root, 3)
    # as at a terminal: a shell starts background jobs (`cmd &`) with SIGINT ignored, and a
    # test run launched that way would hand the ignored signal down to this child
    proc = subprocess.Popen(cli(root, *tune_args(root)), env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 90
    while True:  # interrupt once a second trial finished and a third is well under way
        time.sleep(0.2)
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        trials = study_trials(root)
        running = [t for t in trials if t.state.name == "RUNNING"]
        if sum(t.state.name == "COMPLETE" for t in trials) >= 2 and running and \
                time.time() - running[0].datetime_start.timestamp() > 0.2:
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("interrupted: finished trials and outputs "
                                                    "are saved")
    # the outputs of the last complete run are untouched; the study kept every finished
    # trial and the interrupted one is marked failed, not left running
    assert (root / "tune" / "best_params.json").read_bytes() == best_before
    states = [t.state.name for t in study_trials(root)]
    assert states.count("COMPLETE") >= 2 and "RUNNING" not in states and states[-1] == "FAIL"
    again = subprocess.run(cli(root, *tune_args(root)), env=env(), capture_output=True,
                           text=True, timeout=180)
    assert again.returncode == 0, again.stderr
    states = [t.state.name for t in study_trials(root)]
    assert states.count("COMPLETE") == 3
    assert (root / "tune" / "best_params.json").read_bytes() != best_before


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers (a firewalled or hung server)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def run_main(root: Path, monkeypatch, capsys, **env: str) -> tuple[int, str]:
    """The CLI in this process (as `python -m pipeline tune`), with some environment set."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code = main(["--params", str(root / "params.yaml"), *tune_args(root)])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("kind", ["closed", "silent"])
def test_a_storage_that_cannot_be_reached_fails_fast_with_one_line(
        tmp_path, kind, silent_server, monkeypatch, capsys):
    port = _closed_port() if kind == "closed" else silent_server
    root = make_project(tmp_path)
    started = time.monotonic()
    code, err = run_main(root, monkeypatch, capsys, OPTUNA_STORAGE=(
        f"postgresql+psycopg://me:secret@127.0.0.1:{port}/optuna"))
    assert code == 2
    assert time.monotonic() - started < CONNECT_TIMEOUT_SECONDS + 10
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: cannot reach the Optuna storage postgresql+psycopg://"
                              f"me:***@127.0.0.1:{port}/optuna")
    assert "OPTUNA_STORAGE" in message and "secret" not in err


def test_a_storage_url_optuna_cannot_use(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path)
    code, err = run_main(root, monkeypatch, capsys, OPTUNA_STORAGE="postgres-ish://nowhere")
    assert code == 2
    assert "error: not a storage URL Optuna can use: postgres-ish://nowhere" in err


def test_a_tracking_server_that_cannot_be_reached(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path)
    uri = f"http://127.0.0.1:{_closed_port()}"
    code, err = run_main(root, monkeypatch, capsys, MLFLOW_TRACKING_URI=uri,
                         OPTUNA_STORAGE=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert code == 2
    assert f"error: cannot reach the MLflow tracking server {uri}" in err


def stage_main(root: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """One stage through the CLI in this process, with no service set in the environment."""
    from pipeline.cli import main

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
    code = main(["--params", str(root / "params.yaml"), "-q", *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("rows", "folds", "needed"), [
    (4, 5, 5),
    # 3 rows in 2 folds: a fold fits on one row, which has no spread to scale its columns
    # by (the reference's LightGBM stopped with "num_data > 0"; the MLP predicted 8e7 for
    # prices of 1e6, and 6e19 from 2 rows)
    (3, 2, 4),
])
def test_fewer_rows_than_folds_stops_plan_and_reference_with_one_line(
        tmp_path, monkeypatch, capsys, rows, folds, needed):
    monkeypatch.chdir(tmp_path)  # a stage that ran would note its time in data/timings
    write_competition(tmp_path / "raw", make_houses(rows, seed=1),
                      make_houses(3, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw", cv={"n_folds": folds},
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    code, err = stage_main(tmp_path, monkeypatch, capsys, "prepare", "--out",
                           str(tmp_path / "prepared"))
    assert code == 0, err  # prepare reads no cv params: the folds are checked where used
    for stage in (["plan", "--out", str(tmp_path / "plan")],
                  ["reference", "--plan", str(tmp_path / "plan"), "--out",
                   str(tmp_path / "reference")]):
        code, err = stage_main(tmp_path, monkeypatch, capsys, *stage,
                               "--prepared", str(tmp_path / "prepared"))
        assert code == 2 and err.strip() == (
            f"error: cv.n_folds: {folds} folds need at least {needed} training rows left for "
            f"fitting (each fold fits on at least 2), the data has {rows}")
    assert not (tmp_path / "reference").exists() and not (tmp_path / "plan").exists()
    # the fewest rows the folds accept: the MLP's plan and the references (LightGBM on two
    # rows a fold) run
    make_houses(needed, seed=1).to_csv(tmp_path / "raw" / "train.csv", index=False)
    for stage in (["prepare", "--out", str(tmp_path / "prepared")],
                  ["plan", "--prepared", str(tmp_path / "prepared"), "--out",
                   str(tmp_path / "plan")],
                  ["reference", "--prepared", str(tmp_path / "prepared"), "--plan",
                   str(tmp_path / "plan"), "--out", str(tmp_path / "reference")]):
        assert stage_main(tmp_path, monkeypatch, capsys, *stage) == (0, "")


def test_a_password_in_params_yaml_stops_the_stage_before_it_is_recorded(
        tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["tune"]["storage"] = f"sqlite:///{tmp_path / 'optuna.db'}?password=hunter2"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    code, err = stage_main(root, monkeypatch, capsys, *tune_args(root))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: tune.storage in params.yaml holds a password (sqlite:///")
    assert "password=***" in err and "hunter2" not in err


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (group,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(group.choices)


@pytest.mark.parametrize("stage", [None, *STAGES])
def test_every_option_has_help_and_says_its_default(stage):
    parser = build_parser()
    if stage is not None:
        parser = subparsers(parser)[stage]
    text = parser.format_help()
    skip = argparse._HelpAction | argparse._VersionAction
    options = [a for a in parser._actions if a.option_strings and not isinstance(a, skip)]
    assert options
    for action in options:
        assert action.help, action.option_strings
        if isinstance(action, argparse._StoreTrueAction):
            continue  # a flag: off unless given
        shown = " ".join(parser._get_formatter()._expand_help(action).split())
        assert "default" in shown, (stage, action.option_strings, shown)
        if action.default not in (None, argparse.SUPPRESS):
            assert f"(default: {action.default})" in shown
    assert "#" not in text  # the help ends in words, not a code comment


@pytest.mark.parametrize("argv", [
    ["--params", "other.yaml", "-q", "train", "--out", "m"],
    ["train", "--params", "other.yaml", "-q", "--out", "m"],
    ["-q", "train", "--out", "m", "--params", "other.yaml"],
])
def test_options_are_accepted_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert (args.stage, args.params, args.quiet, args.out) == ("train", Path("other.yaml"),
                                                               True, Path("m"))


def test_params_after_the_subcommand_win_and_the_default_is_params_yaml():
    parser = build_parser()
    assert parser.parse_args(["predict"]).params == Path("params.yaml")
    args = parser.parse_args(["--params", "a.yaml", "predict", "--params", "b.yaml"])
    assert args.params == Path("b.yaml")


@pytest.mark.parametrize("program", ["python -m pipeline", "tabpipe"])
def test_help_and_version_name_the_program_as_invoked(program):
    command = ([sys.executable, "-m", "pipeline"] if program.startswith("python")
               else [str(Path(sys.executable).parent / "tabpipe")])
    if not Path(command[0]).exists():
        pytest.skip("the tabpipe script is not installed (pip install -e .)")
    usage = subprocess.run([*command, "--help"], capture_output=True, text=True, env=env(),
                           check=True).stdout
    assert usage.startswith(f"usage: {program} ")
    assert f"`{program} <subcommand> --help`" in " ".join(usage.split())
    version = subprocess.run([*command, "--version"], capture_output=True, text=True,
                             env=env(), check=True).stdout
    assert version.strip() == f"{program} {importlib.metadata.version('tabular-mlp-pipeline')}"


QUIET_CHECK = """
import logging, os, sys, warnings
from pipeline.cli import _setup_logging
_setup_logging(quiet=False, verbose=sys.argv[1] == "-v")
logging.getLogger("mlflow.pyfunc").warning("Passing a Python object as `python_model` causes")
logging.getLogger("mlflow.pyfunc").warning("something else MLflow has to say")
logging.getLogger("matplotlib.font_manager").warning("Matplotlib is building the font cache")
warnings.warn("Hint: Inferred schema contains integer column(s).", UserWarning)
print(os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"),
      os.environ.get("MLFLOW_LOGGING_LEVEL"))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_library_noise_is_held_back_unless_verbose(verbose):
    clean = {k: v for k, v in env().items() if k not in QUIET_ENVIRONMENT}  # as from a shell
    result = subprocess.run([sys.executable, "-c", QUIET_CHECK, "-v" if verbose else ""],
                            capture_output=True, text=True, env=clean, check=True)
    err = result.stderr
    assert "something else MLflow has to say" in err  # other warnings still reach the user
    noise = ("Passing a Python object", "font cache", "Inferred schema contains integer")
    if verbose:
        assert all(n in err for n in noise), err
        assert result.stdout.split() == ["None", "None"]
    else:
        assert not any(n in err for n in noise), err
        assert result.stdout.split() == ["false", "WARNING"]  # read by MLflow on import


@pytest.mark.parametrize("seconds, shown", [(3.24, "3.2 s"), (59.94, "59.9 s"),
                                            (84.4, "1 min 24 s"), (3600, "60 min 0 s")])
def test_stage_durations_read_as_a_person_reads_them(seconds, shown):
    assert duration(seconds) == shown
