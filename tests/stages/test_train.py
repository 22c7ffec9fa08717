"""The train stage through the command line: it loads the reference models only when their
SHA-256 matches the record the reference stage wrote beside them; a model that cannot be
written is one line, and the previous model stays."""

from __future__ import annotations

import pytest
import yaml

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import save_pickle, write_json
from pipeline.stages import plan, prepare, reference

from ..conftest import (
    file_size_limit,
    leftovers,
    make_houses,
    run_cli,
    small_params,
    unwritable,
    write_competition,
)


def test_train_refuses_reference_models_whose_sha256_is_not_the_recorded_one(tmp_path,
                                                                              capsys):
    write_competition(tmp_path / "raw", make_houses(60, seed=1),
                      make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw",
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    write_json(tmp_path / "best_params.json", {"params": {}, "study": "s"})
    references = tmp_path / "reference" / "reference_models.pkl"
    save_pickle(references, {"stand-in": "for the fitted fold models"})
    references.write_bytes(references.read_bytes().replace(b"stand-in", b"replaced"))
    code = main(["--params", str(tmp_path / "params.yaml"), "-q", "train", "--prepared",
                 str(tmp_path / "prepared"), "--plan", str(tmp_path / "plan"),
                 "--best-params", str(tmp_path / "best_params.json"),
                 "--references", str(references), "--out", str(tmp_path / "models")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith(f"error: {references}: its SHA-256 (")
    assert "is not the one recorded in reference_models.pkl.sha256" in err
    assert not (tmp_path / "models").exists()


@pytest.mark.parametrize("failure", ["file-size limit", "unwritable folder"])
def test_a_model_that_cannot_be_written_is_one_line_and_the_old_one_stays(tmp_path, failure):
    """A full disk (`ulimit -f`: EFBIG, as ENOSPC) while the model is written, or a folder
    that cannot be written (found before the fit, not after it): one line naming the file
    and why, exit 2, the previous models/ as it was, no temp left (was a traceback)."""
    write_competition(tmp_path / "raw", make_houses(60, seed=1),
                      make_houses(20, seed=2, first_id=1001).drop(columns="SalePrice"))
    params = small_params(tmp_path / "raw",
                          tracking={"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = load_config(tmp_path / "params.yaml")
    prepare.run(cfg, tmp_path / "prepared")
    plan.run(cfg, tmp_path / "prepared", tmp_path / "plan")
    reference.run(cfg, tmp_path / "prepared", tmp_path / "reference")
    write_json(tmp_path / "best_params.json", {"params": {}, "study": "s", "trial": 0})
    folder = tmp_path / "out"
    out = folder / "models"
    args = ["--params", tmp_path / "params.yaml", "train", "--prepared",
            tmp_path / "prepared", "--plan", tmp_path / "plan", "--best-params",
            tmp_path / "best_params.json", "--references",
            tmp_path / "reference" / "reference_models.pkl", "--out", out]
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    old = {p.name: p.read_bytes() for p in out.iterdir()}
    if failure == "file-size limit":
        limit = len(old["model.pkl"]) // 2
        written_before = ("oof_predictions.csv", "learning_curves.csv", "train_metrics.json")
        assert all(len(old[name]) < limit for name in written_before)  # the model fails
        done = run_cli(*args, preexec_fn=file_size_limit(limit))
        line = (f"error: cannot write {out / 'model.pkl'}: File too large (the disk or a "
                "file-size limit is full)")
    else:
        with unwritable(folder) as why:
            done = run_cli(*args)
        line = f"error: cannot write {out}: {why} ("
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1].startswith(line), done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("error:") == 1, done.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old
    assert leftovers(folder) == []
    if failure == "unwritable folder":  # found at the start: no fit run for nothing
        assert "training 3 folds" in first.stderr and "training" not in done.stderr


