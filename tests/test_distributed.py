"""Several tune workers on one study in the real PostgreSQL at 127.0.0.1:5432, with MLflow in
PostgreSQL directly or behind a real `mlflow server`; a worker killed mid-trial."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import optuna
import pytest
import yaml

from pipeline.config import load_config
from pipeline.io import read_json
from pipeline.stages import plan, prepare

from .conftest import REPO, make_houses, small_params, write_competition

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


def _admin_connection():
    import psycopg

    return psycopg.connect(POSTGRES.replace("+psycopg", "") + "/postgres", autocommit=True,
                           connect_timeout=3)


@pytest.fixture(scope="module")
def postgres() -> str:
    """The server's URL; the tests skip (saying why) when it is not there."""
    try:
        _admin_connection().close()
    except Exception as exc:  # noqa: BLE001 - any failure to connect means: no server here
        pytest.skip(f"PostgreSQL at {POSTGRES} is not reachable ({exc}); CI provides it")
    return POSTGRES


@pytest.fixture
def database(postgres):
    """A fresh database per use, dropped afterwards: returns a function name -> URL."""
    created = []

    def make(label: str) -> str:
        name = f"t_{label}_{uuid.uuid4().hex[:10]}"
        with _admin_connection() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return f"{postgres}/{name}"

    yield make
    with _admin_connection() as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_project(root: Path, storage: str, tracking: str, **sections: dict) -> Path:
    """A tiny competition, its params (storage and tracking in them) and its prepared data."""
    train = make_houses(150, seed=1)
    test = make_houses(50, seed=2, first_id=1001).drop(columns="SalePrice")
    write_competition(root / "raw", train, test)
    tune = {"n_trials": 6, "storage": storage, "heartbeat_interval": 1, "grace_period": 4,
            **sections.pop("tune", {})}
    sections["model"] = {"epochs": 30, "eval_every": 3, **sections.get("model", {})}
    params = small_params(root / "raw", tune=tune, tracking={"uri": tracking,
                                                             "experiment": "dist"}, **sections)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(root / "params.yaml")
    prepare.run(cfg, root / "prepared")
    plan.run(cfg, root / "prepared", root / "plan")
    return root


def pipeline_cmd(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline", "--params", str(root / "params.yaml"), *args,
            "--prepared", str(root / "prepared"), "--plan", str(root / "plan"),
            "--storage-dir", str(root / "optuna")]


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    clean["PYTHONPATH"] = str(REPO)
    return clean


def start(root: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(pipeline_cmd(root, *args), cwd=root, env=env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{out}\n{err}"
    return out, err


_storages: dict[str, optuna.storages.RDBStorage] = {}


def the_study(root: Path, must_exist: bool = True) -> optuna.Study | None:
    url = load_config(root / "params.yaml").tune.storage
    storage = _storages.setdefault(url, optuna.storages.RDBStorage(url))
    try:
        summaries = optuna.get_all_study_summaries(storage)
    except KeyError:  # a worker is creating the study right now: its rows are not all in yet
        if must_exist:
            raise
        return None
    names = [s.study_name for s in summaries
             if ":" not in s.study_name]  # not the MLflow parent-run claims
    if not names and not must_exist:
        return None
    assert len(names) == 1, names
    return optuna.load_study(study_name=names[0], storage=storage)


def check_study_and_runs(root: Path, tracking: str, reported: int) -> optuna.Study:
    """The study holds exactly the trials the workers ran, numbered once each, and every
    finished trial has its MLflow child run under the study's one parent run."""
    from mlflow import MlflowClient

    study = the_study(root)
    trials = study.get_trials(deepcopy=False)
    assert len(trials) == reported
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) >= 6
    assert len({t.user_attrs["worker"] for t in trials}) >= 2  # both workers contributed
    client = MlflowClient(tracking_uri=tracking)
    experiment = client.get_experiment_by_name("dist")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("run_kind") == "study"]
    assert len(parents) == 1, [r.info.run_id for r in parents]
    children = {int(r.data.tags["optuna_trial"]): r for r in runs
                if r.data.tags.get("run_kind") == "trial"}
    for t in finished:
        run = children[t.number]
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.tags["state"] == {"COMPLETE": "complete", "PRUNED": "pruned"}[t.state.name]
        assert run.info.status == "FINISHED"
        assert {k: float(v) for k, v in run.data.params.items()} == pytest.approx(t.params)
    return study


def run_workers_then_stage(root: Path, tracking: str, one_command: bool = False) -> None:
    """Two workers (two commands, or one `tune-worker --processes 2`), then the tune stage."""
    if one_command:
        workers = [start(root, "tune-worker", "--processes", "2")]
    else:
        workers = [start(root, "tune-worker", "--threads", "1") for _ in range(2)]
    outputs = [finish(w) for w in workers]
    ran = [int(n) for out, _ in outputs for n in re.findall(r"ran (\d+) trials", out)]
    assert len(ran) == 2, outputs
    study = check_study_and_runs(root, tracking, sum(ran))
    before = len(study.trials)
    finish(subprocess.Popen(pipeline_cmd(root, "tune", "--out", str(root / "tune")), cwd=root,
                            env=env(), text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE))
    best = read_json(root / "tune" / "best_params.json")
    study = the_study(root)
    assert len(study.trials) == before  # the study was full: the stage only wrote outputs
    assert best["trial"] == study.best_trial.number
    assert best["value"] == pytest.approx(study.best_value)
    assert best["params"] == pytest.approx(study.best_params)
    check_study_and_runs(root, tracking, before)  # still one parent run


def test_two_workers_share_one_study_tracked_in_postgres(tmp_path, database):
    tracking = database("mlflow")
    root = make_project(tmp_path, database("optuna"), tracking)
    run_workers_then_stage(root, tracking)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(database, tmp_path):
    """A real `mlflow server` on loopback, its runs in a PostgreSQL database."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--backend-store-uri", database("server"),
         "--default-artifact-root", str(tmp_path / "artifacts")],
        env=env(), stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
        start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2):
                break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("mlflow server did not come up:\n"
                            + (tmp_path / "server.log").read_text()[-3000:])
            time.sleep(0.5)
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def test_two_workers_share_one_study_tracked_by_an_mlflow_server(tmp_path, database,
                                                                 mlflow_server):
    root = make_project(tmp_path / "p", database("optuna"), mlflow_server)
    run_workers_then_stage(root, mlflow_server, one_command=True)


def test_a_worker_killed_mid_trial_is_retried_and_the_stage_resumes(tmp_path, database):
    tracking = database("mlflow")
    root = make_project(tmp_path, database("optuna"), tracking,
                        model={"epochs": 1500, "eval_every": 100},
                        tune={"n_trials": 3, "pruner": {"kind": "none"}})
    tuned = set(load_config(root / "params.yaml").tune.search_space)
    worker = start(root, "tune-worker", "--threads", "1")
    deadline = time.monotonic() + 120
    killed = None
    while killed is None:  # once one trial is complete and the next is under way with its
        # parameters stored (killed before, its retry would draw them anew)
        assert worker.poll() is None, worker.communicate()
        assert time.monotonic() < deadline, "the worker never got to a second trial"
        time.sleep(0.2)
        study = the_study(root, must_exist=False)
        if study is None:
            continue
        trials = study.get_trials(deepcopy=False)
        running = [t for t in trials if t.state.name == "RUNNING" and set(t.params) == tuned]
        if any(t.state.name == "COMPLETE" for t in trials) and running:
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            killed = running[0].number
    before = {t.number: (t.state.name, t.value, t.params) for t in the_study(root).trials}
    assert before[killed][0] == "RUNNING"  # nobody is left to say otherwise ...
    assert set(before[killed][2]) == tuned
    stage = subprocess.run(pipeline_cmd(root, "tune", "--out", str(root / "tune")), cwd=root,
                           env=env(), text=True, capture_output=True, timeout=240)
    assert stage.returncode == 0, stage.stderr
    study = the_study(root)
    trials = {t.number: t for t in study.trials}
    assert trials[killed].state.name == "FAIL"  # ... until its heartbeat went stale
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state.name == "COMPLETE"
    assert retries[0].params == before[killed][2]  # the same point, run again
    for number, (state, value, _) in before.items():  # nothing that finished was lost
        if state == "COMPLETE":
            assert trials[number].state.name == "COMPLETE" and trials[number].value == value
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in trials.values()) == 3
    assert not [t for t in trials.values() if t.state.name in ("RUNNING", "WAITING")]
    best = read_json(root / "tune" / "best_params.json")
    assert best["trial"] == study.best_trial.number
