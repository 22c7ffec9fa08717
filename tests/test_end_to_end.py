"""The real stages under real DVC, MLflow and Optuna stores, on a slice of House Prices."""

from __future__ import annotations

import difflib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from .conftest import REPO

pytestmark = pytest.mark.slow

SMALL = {
    "base": {"threads": 1},
    "cv": {"n_folds": 3},
    "model": {"epochs": 8, "width": 32, "eval_every": 2},
    "ensemble": {"n_seeds": 2},
    "reference": {"gbm_max_rounds": 30},
    # the first three trials complete, the fourth is pruned (at epoch 4)
    "tune": {"n_trials": 4, "n_startup_trials": 2,
             "pruner": {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 2}},
}


def small_project(root: Path) -> Path:
    """A copy of the project with 300 training rows, 120 test rows and tiny params."""
    project = root / "project"
    shutil.copytree(REPO / "pipeline", project / "pipeline",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dvc.yaml", ".dvcignore", ".gitignore"):  # the stores stay out of git
        shutil.copy(REPO / name, project / name)
    raw = project / "data" / "raw"
    raw.mkdir(parents=True)
    train = pd.read_csv(REPO / "data/raw/train.csv").iloc[:300]
    test = pd.read_csv(REPO / "data/raw/test.csv").iloc[:120]
    sample = pd.read_csv(REPO / "data/raw/sample_submission.csv").iloc[:120]
    # keep the two documented outliers so fit_exclude has something to leave out
    outliers = pd.read_csv(REPO / "data/raw/train.csv").query("GrLivArea > 4000 and "
                                                              "SalePrice < 300000")
    pd.concat([train, outliers]).to_csv(raw / "train.csv", index=False)
    test.to_csv(raw / "test.csv", index=False)
    sample.to_csv(raw / "sample_submission.csv", index=False)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for section, values in SMALL.items():
        params[section] = {**params[section], **values}
    # the trials SMALL's comment promises are drawn from this space (width 32 lies outside
    # its choices, so no trial of the model's own values is enqueued either)
    params["tune"]["search_space"].pop("numeric_embedding", None)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "t@example.com"],
                ["git", "config", "user.name", "test"],
                [sys.executable, "-m", "dvc", "init", "-q"],
                ["cp", str(REPO / ".dvc" / "config"), str(REPO / ".dvc" / "plots-offline.html"),
                 ".dvc/"],  # analytics off, the offline plots page
                ["git", "add", "-A"], ["git", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=project, check=True, capture_output=True)
    return project


def run(project: Path, *args: str, check: bool = True,
        env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(env_extra or {})
    result = subprocess.run(list(args), cwd=project, env=env, capture_output=True, text=True,
                            timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} failed:\n{result.stdout}\n{result.stderr}")
    return result


def dvc(project: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(project, sys.executable, "-m", "dvc", *args, check=check)


@pytest.fixture(scope="module")
def project(e2e_project) -> Path:
    return e2e_project


def test_submission_is_valid(project):
    sub = pd.read_csv(project / "data/submission.csv")
    test = pd.read_csv(project / "data/raw/test.csv")
    assert sub.columns.tolist() == ["Id", "SalePrice"]
    np.testing.assert_array_equal(sub["Id"], test["Id"])
    assert np.isfinite(sub["SalePrice"]).all() and (sub["SalePrice"] > 0).all()
    # sane prices: within the training range, give or take
    assert 20_000 < sub["SalePrice"].median() < 500_000


def test_second_repro_is_a_no_op_and_one_param_reruns_only_its_stages(project):
    again = dvc(project, "repro")
    assert "Running stage" not in again.stdout, again.stdout
    status = json.loads(dvc(project, "status", "--json").stdout or "{}")
    assert status == {}
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ensemble"]["n_seeds"] = 1
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(dvc(project, "status", "--json").stdout)
    assert set(status) == {"train"}, status
    diff = dvc(project, "params", "diff")
    assert "ensemble.n_seeds" in diff.stdout


def test_metrics_show_lists_the_headline_first_then_oof_and_fold_scores(project):
    shown = dvc(project, "metrics", "show").stdout
    for key in ("oof_rmse", "fold_rmse.fold_0", "reference.linear.oof_rmse",
                "reference.gbm.oof_rmse"):
        assert key in shown, shown
    header, first, *_ = shown.splitlines()
    assert header.split()[:6] == ["Path", "RMSE.final", "RMSE.mlp", "RMSE.ref_average",
                                  "RMSE.ref_gbm", "RMSE.ref_linear"]
    assert first.startswith("reports/headline.json")
    headline = dvc(project, "metrics", "show", "reports/headline.json").stdout
    assert max(len(line) for line in headline.splitlines()) <= 120
    scores = json.loads((project / "reports/headline.json").read_text())["RMSE"]
    assert scores["final"] == json.loads((project / "reports/metrics.json").read_text())[
        "oof_rmse"]
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert 0 < metrics["oof_rmse"] < 1.0
    assert len(metrics["fold_rmse"]) == 3


def test_mlflow_holds_study_trials_and_final_model(project):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("house-prices")
    runs = client.search_runs([experiment.experiment_id])
    kinds = {}
    for r in runs:
        kinds.setdefault(r.data.tags.get("run_kind"), []).append(r)
    assert len(kinds["study"]) == 1
    parent = kinds["study"][0]
    assert len(kinds["trial"]) == 4
    best = json.loads((project / "data/tune/best_params.json").read_text())
    for trial in kinds["trial"]:
        assert trial.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert trial.data.tags["optuna_study"] == best["study"]
        assert set(trial.data.params) == set(best["params"])
        for tag in ("mlflow.source.git.commit", "data_hash", "dvc_stage", "seed"):
            assert tag in trial.data.tags
    complete = [t for t in kinds["trial"] if t.data.tags["state"] == "complete"]
    for trial in complete:
        assert {f"fold_{k}_rmse" for k in range(3)} <= set(trial.data.metrics)
        assert trial.data.metrics["cv_rmse"] > 0
    final = kinds["final"][0]
    trained = json.loads((project / "models/train_metrics.json").read_text())
    # params.yaml's tune.objective_rows: fit, and the outliers kept: cv_rmse on the fit rows
    assert trained["oof_rmse_fit_rows"] != trained["oof_rmse"]
    assert final.data.metrics["cv_rmse"] == pytest.approx(trained["oof_rmse_fit_rows"])
    assert final.data.metrics["cv_rmse_all_rows"] == pytest.approx(trained["oof_rmse"])
    assert {r.data.tags["scored_rows"] for r in [final, parent, *kinds["trial"]]} == {"fit"}
    references = json.loads((project / "data/reference/reference_metrics.json").read_text())
    for name in ("linear", "gbm"):  # the comparison is in MLflow too, on the same folds
        assert final.data.metrics[f"reference_{name}_oof_rmse"] == pytest.approx(
            references[name]["oof_rmse"])
    assert final.data.metrics["reference_average_oof_rmse"] == pytest.approx(
        references["reference_average"]["oof_rmse"])
    models = client.search_logged_models([experiment.experiment_id])
    assert any(m.source_run_id == final.info.run_id for m in models)


def test_mlflow_at_a_glance(project, tmp_path):
    """What the MLflow UI shows, read back from the store: run states, one headline metric
    name on every kind of run, the best trial tagged, descriptions, the final model's curves
    as metrics, per-fold scores, importances as a table, the training data as a dataset."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("house-prices")
    assert "cv_rmse" in experiment.tags["mlflow.note.content"]
    kinds = runs_by_kind(project)
    (study,), (final,), trials = kinds["study"], kinds["final"], kinds["trial"]
    best = json.loads((project / "data/tune/best_params.json").read_text())
    trained = json.loads((project / "models/train_metrics.json").read_text())

    # every run FINISHED: a pruned trial is not a failure (KILLED draws a red cross)
    assert {r.info.status for r in [study, final, *trials]} == {"FINISHED"}
    states = {r.data.tags["optuna_trial"]: r.data.tags["state"] for r in trials}
    assert sorted(states.values()) == ["complete", "complete", "complete", "pruned"]
    for trial in trials:
        if trial.data.tags["state"] == "pruned":
            assert "cv_rmse" not in trial.data.metrics  # no partial score among the finished
            epochs = [m.step for m in client.get_metric_history(trial.info.run_id, "val_rmse")]
            assert trial.data.metrics["pruned_at_epoch"] == max(epochs) < 8
        else:
            assert "pruned_at_epoch" not in trial.data.metrics
    # one headline name: the study's best, each complete trial's, the final model's OOF
    complete = [t for t in trials if t.data.tags["state"] == "complete"]
    assert study.data.metrics["cv_rmse"] == pytest.approx(best["value"])
    assert min(t.data.metrics["cv_rmse"] for t in complete) == pytest.approx(best["value"])
    assert final.data.metrics["cv_rmse"] == pytest.approx(trained["oof_rmse_fit_rows"])
    assert "oof_rmse" not in final.data.metrics and "best_cv_rmse" not in study.data.metrics
    tagged = [t for t in trials if t.data.tags.get("best_trial") == "true"]
    assert [t.data.tags["optuna_trial"] for t in tagged] == [str(best["trial"])]
    assert study.data.metrics["pruned_trials"] == 1 and study.data.metrics["complete_trials"] == 3

    for run in (study, final):
        assert best["study"] in run.data.tags["mlflow.note.content"]
    assert f"Best: trial {best['trial']}" in study.data.tags["mlflow.note.content"]
    model = client.get_registered_model(MODEL_NAME)
    assert f"models:/{MODEL_NAME}@champion" in model.description
    assert final.info.run_id in client.get_model_version(MODEL_NAME, "1").description

    # the final model's learning curves, per epoch (step = epoch): mean and per fold
    curve = pd.read_csv(project / "reports/learning_curve.csv")
    for name in ("train_rmse", "val_rmse"):
        history = client.get_metric_history(final.info.run_id, name)
        assert [m.step for m in history] == curve["epoch"].tolist()
        np.testing.assert_allclose([m.value for m in history], curve[name], rtol=1e-9)
        for k in range(3):
            folds = client.get_metric_history(final.info.run_id, f"fold_curves/fold_{k}_{name}")
            assert [m.step for m in folds] == curve["epoch"].tolist()
    # per-fold scores as metrics and as one table; importances as a table, not metrics
    for k, score in enumerate(trained["fold_rmse"]):
        assert final.data.metrics[f"fold_{k}_rmse"] == pytest.approx(score)
    cwd = os.getcwd()
    os.chdir(project)  # artifacts live beside the store, relative to the project
    try:
        folds = json.loads(Path(client.download_artifacts(
            final.info.run_id, "fold_scores.json", str(tmp_path))).read_text())
        importances = json.loads(Path(client.download_artifacts(
            study.info.run_id, "param_importances.json", str(tmp_path))).read_text())
    finally:
        os.chdir(cwd)
    table = pd.DataFrame(folds["data"], columns=folds["columns"])
    assert {"fold", "rows", "final", "mlp", "linear", "gbm"} <= set(table.columns)
    np.testing.assert_allclose(table["final"], trained["fold_rmse"])
    assert importances["columns"] == ["param", "importance"]
    assert sum(v for _, v in importances["data"]) == pytest.approx(1.0, abs=1e-3)
    assert {p for p, _ in importances["data"]} <= set(best["params"])

    # the training data, on every run: named after its file, the data hash as its digest
    data_hash = json.loads((project / "data/prepared/meta.json").read_text())["data_hash"]
    for run in (study, final, *trials):
        (logged,) = run.inputs.dataset_inputs
        assert (logged.dataset.name, logged.dataset.digest) == ("train.csv", data_hash)
        assert "data/raw/train.csv" in logged.dataset.source
        assert '"num_rows": 302' in logged.dataset.profile  # 300 rows and the 2 outliers


def test_the_console_says_what_each_stage_did_without_library_noise(project):
    log = (project.parent / "repro.log").read_text()
    for stage in ("prepare", "tune", "reference", "train", "predict", "evaluate"):
        done = rf"^\d\d:\d\d:\d\d {stage}: done in (\d+ min )?[\d.]+ s$"
        assert re.search(done, log, re.M), stage
    for noise in ("CloudPickle", "Downloading artifacts", "Successfully registered model",
                  "Creating initial MLflow database tables", "font cache",
                  "Traceback", "Warning:"):
        assert noise not in log, noise
    best = re.search(r"best trial: #\d+, cv_rmse \d\.\d{5}, with (\{.*\})$", log, re.M)
    assert best, log
    assert not re.search(r"\d\.\d{7,}", best.group(1))  # params rounded where printed
    assert re.search(r"^\d\d:\d\d:\d\d trial 3 pruned at epoch \d+", log, re.M)


def test_no_run_id_reaches_a_dvc_output(project):
    """MLflow run ids stay in MLflow: a DVC output holding one would leave dvc.lock modified
    after every fresh run."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("house-prices")
    run_ids = {r.info.run_id for r in client.search_runs([experiment.experiment_id])}
    assert len(run_ids) >= 6
    outputs = [p for d in ("data/tune", "data/reference", "models", "reports")
               for p in (project / d).rglob("*") if p.is_file()]
    outputs.append(project / "data/submission.csv")
    assert len(outputs) > 10
    for path in outputs:
        data = path.read_bytes()
        for run_id in run_ids:
            assert run_id.encode() not in data, (path, run_id)


def test_logged_model_reproduces_the_submission(project):
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name("house-prices")
    final = mlflow.search_runs([experiment.experiment_id],
                               filter_string="tags.run_kind = 'final'", output_format="list")[0]
    model_uri = f"runs:/{final.info.run_id}/model"
    cwd = os.getcwd()
    os.chdir(project)  # artifacts live beside the store, relative to the project
    try:
        loaded = mlflow.pyfunc.load_model(model_uri)
    finally:
        os.chdir(cwd)
    test = pd.read_csv(project / "data/raw/test.csv")
    predicted = loaded.predict(test)
    sub = pd.read_csv(project / "data/submission.csv")
    np.testing.assert_array_equal(predicted["Id"], sub["Id"])
    np.testing.assert_allclose(predicted["SalePrice"], sub["SalePrice"], rtol=0, atol=0.005)


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL_NAME = "house-prices-mlp"


def runs_by_kind(project: Path) -> dict[str, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("house-prices")
    kinds: dict[str, list] = {}
    for r in client.search_runs([experiment.experiment_id]):
        kinds.setdefault(r.data.tags.get("run_kind"), []).append(r)
    return kinds


def assert_valid_pngs(directory: Path, stems: set[str]) -> None:
    import matplotlib.image as mpimg

    assert {p.stem for p in directory.glob("*.png")} == stems
    for stem in stems:
        path = directory / f"{stem}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC, path
        height, width, _ = mpimg.imread(path).shape
        assert height > 100 and width > 100


def test_runs_carry_the_plots_as_pngs(project, tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    kinds = runs_by_kind(project)
    final, study = kinds["final"][0], kinds["study"][0]
    assert final.data.tags["study_run_id"] == study.info.run_id
    for tag in ("mlflow.source.git.commit", "data_hash", "dvc_stage", "seed"):
        assert tag in final.data.tags and tag in study.data.tags
    cwd = os.getcwd()
    os.chdir(project)  # artifacts live beside the store, relative to the project
    try:
        final_plots = Path(client.download_artifacts(final.info.run_id, "plots",
                                                     str(tmp_path / "final")))
        study_plots = Path(client.download_artifacts(study.info.run_id, "plots",
                                                     str(tmp_path / "study")))
        artifacts = {a.path for a in client.list_artifacts(final.info.run_id)}
    finally:
        os.chdir(cwd)
    assert_valid_pngs(final_plots, {"learning_curves", "predicted_vs_actual", "residuals"})
    # 3 complete trials with different params: the importances can be computed
    assert_valid_pngs(study_plots, {"optimisation_history", "param_importances"})
    assert not [k for k in study.data.metrics if k.startswith("importance_")]  # a table now
    assert {"oof_predictions.csv", "learning_curves.csv", "plots"} <= artifacts
    assert_valid_pngs(project / "reports/plots",
                      {"learning_curves", "predicted_vs_actual", "residuals"})


def test_the_champion_is_registered_and_serves_the_submission(project, tmp_path):
    """`mlflow models predict -m models:/<name>@champion` reproduces data/submission.csv."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    final = runs_by_kind(project)["final"][0]
    assert str(champion.version) == "1" and champion.run_id == final.info.run_id
    # the tag is written to 6 decimals
    assert float(champion.tags["cv_rmse"]) == pytest.approx(final.data.metrics["cv_rmse"],
                                                           abs=5e-7)
    out = tmp_path / "predictions.json"
    run(project, "mlflow", "models", "predict", "-m", f"models:/{MODEL_NAME}@champion",
        "-i", "data/raw/test.csv", "-t", "csv", "--env-manager", "local", "-o", str(out),
        env_extra={"MLFLOW_TRACKING_URI": "sqlite:///mlflow.db"})
    predicted = pd.DataFrame(json.loads(out.read_text())["predictions"])
    sub = pd.read_csv(project / "data/submission.csv")
    assert predicted.columns.tolist() == ["Id", "SalePrice"]
    np.testing.assert_array_equal(predicted["Id"], sub["Id"])
    np.testing.assert_allclose(predicted["SalePrice"], sub["SalePrice"], rtol=0, atol=0.005)


def test_dvc_plots_and_metrics_diff(project, tmp_path):
    out = tmp_path / "dvc_plots"
    shown = dvc(project, "plots", "show", "-o", str(out), "--json")
    shown = json.loads(shown.stdout)
    assert not shown.get("errors"), shown["errors"]
    plots = shown["data"]
    for name in ("learning_curve", "predicted_vs_actual", "reports/plots/learning_curves.png"):
        assert name in plots, list(plots)
    curve_spec = json.dumps(plots["learning_curve"])
    assert "val_rmse" in curve_spec and "train_rmse" in curve_spec
    curve = pd.read_csv(project / "reports/learning_curve.csv")
    assert curve.columns.tolist() == ["epoch", "train_rmse", "val_rmse"]
    assert curve["epoch"].tolist() == [2, 4, 6, 8]  # eval_every 2 over 8 epochs
    html = dvc(project, "plots", "show", "-o", str(out)).stdout
    assert "index.html" in html and (out / "index.html").exists()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "vegaEmbed('#" in page  # the interactive plots, drawn by the inlined scripts
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']https?:", page, re.I)  # offline
    diff = dvc(project, "metrics", "diff", "--all").stdout
    for key in ("oof_rmse", "fold_rmse.fold_2", "reference.gbm.oof_rmse"):
        assert key in diff, diff


def test_optuna_dashboard_reads_the_study_storage(project):
    """The README's optuna-dashboard command serves the tune stage's study."""
    import socket
    import time
    import urllib.request

    with socket.socket() as sock:  # a free port on the loopback interface
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    before = (project / "data/optuna/optuna.db").read_bytes()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "optuna-dashboard"), "sqlite:///data/optuna/optuna.db",
         "--host", "127.0.0.1", "--port", str(port), "--server", "wsgiref", "--quiet"],
        cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, body = time.monotonic() + 60, None
        while body is None and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=5) as response:
                    body = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert body is not None, err.decode(errors="replace")
    best = json.loads((project / "data/tune/best_params.json").read_text())
    assert best["study"] in {s["study_name"] for s in body["study_summaries"]}
    assert (project / "data/optuna/optuna.db").read_bytes() == before  # it only read


def lock_and_reports(project: Path) -> dict[str, bytes]:
    files = [project / "dvc.lock", *sorted((project / "reports").rglob("*"))]
    return {str(p.relative_to(project)): p.read_bytes() for p in files if p.is_file()}


def test_a_forced_rerun_leaves_dvc_lock_and_the_reports_byte_identical(tmp_path):
    """`dvc repro --force` on unchanged code, params and data rebuilds every output to the
    same bytes: the plan decides the same, the study (resumed) runs no trial, the GBM and the
    final fit are seeded and stop by rounds and epochs, not by the clock."""
    project = small_project(tmp_path)
    first_run = dvc(project, "repro")
    first = lock_and_reports(project)
    forced = dvc(project, "repro", "--force")
    assert re.search(r"study \S+ in .*: 4 trials already finished; running until it holds 4",
                     forced.stdout + forced.stderr)
    second = lock_and_reports(project)
    assert set(second) == set(first) and "reports/plots/residuals.png" in first
    differ = [name for name in first if first[name] != second[name]]
    lock = "\n".join(difflib.unified_diff(first["dvc.lock"].decode().splitlines(),
                                         second["dvc.lock"].decode().splitlines(), lineterm=""))
    plans = [line for line in (first_run.stdout + first_run.stderr + forced.stdout
                               + forced.stderr).splitlines()
             if "measured" in line or "kept" in line]
    assert not differ, (differ, lock, plans)


def test_bad_input_fails_the_stage_with_a_clear_error_and_no_output(tmp_path):
    project = small_project(tmp_path)
    train = pd.read_csv(project / "data/raw/train.csv")
    train.loc[5, "SalePrice"] = -1
    train.to_csv(project / "data/raw/train.csv", index=False)
    result = run(project, sys.executable, "-m", "pipeline", "prepare", "--out", "data/prepared",
                 check=False)
    assert result.returncode == 2
    assert "data/raw/train.csv, column 'SalePrice', line 7: target must be positive" in \
        result.stderr
    assert not (project / "data/prepared").exists()
    assert not list((project / "data").glob(".prepared*"))


def test_dvc_exp_run_with_a_changed_param_and_exp_show(project):
    """An experiment rewrites params.yaml (DVC's YAML writer drops quotes such as "No"s),
    reruns the stages that read the param, and registers a new version; the champion alias
    goes to whichever version scores lower."""
    run(project, "git", "checkout", "--", "params.yaml")  # undo earlier tests' edits
    run(project, "git", "add", "-A")  # dvc.lock and the metrics, as a user commits them
    run(project, "git", "commit", "-qm", "dvc repro")
    dvc(project, "exp", "run", "-n", "one-seed", "-S", "ensemble.n_seeds=1")
    params = yaml.safe_load((project / "params.yaml").read_text())
    assert params["ensemble"]["n_seeds"] == 1
    shown = json.loads(dvc(project, "exp", "show", "--json").stdout)
    names = {r.get("name") for rev in shown for exp in rev.get("experiments") or []
             for r in exp.get("revs", [])}
    assert "one-seed" in names, shown
    table = dvc(project, "exp", "show", "--no-pager", "--md").stdout
    assert "one-seed" in table and "ensemble.n_seeds" in table and "oof_rmse" in table
    # the view docs/dvc.md gives fits 120 columns, nothing cut off
    (view,) = re.findall(r"^dvc exp show --only-changed [^#\n]*?(?=\s+#|$)",
                         (REPO / "docs/dvc.md").read_text(), re.M)
    shown = run(project, *shlex.split(view), "--no-pager", env_extra={"COLUMNS": "120"}).stdout
    lines = shown.splitlines()
    assert max(len(line) for line in lines) <= 120 and "…" not in shown, shown
    assert "one-seed" in shown and "ensemble.n_seeds" in shown and "RMSE.final" in shown

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    versions = client.search_model_versions(f"name = '{MODEL_NAME}'")
    assert len(versions) == 2
    scores = {str(v.version): float(v.tags["cv_rmse"]) for v in versions}
    assert scores["1"] != scores["2"]
    champion = client.get_model_version_by_alias(MODEL_NAME, "champion")
    assert str(champion.version) == min(scores, key=scores.get)
