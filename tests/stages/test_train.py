"""The train stage through the command line: it loads the reference models only when their
SHA-256 matches the record the reference stage wrote beside them."""

from __future__ import annotations

import yaml

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.io import save_pickle, write_json
from pipeline.stages import plan, prepare

from ..conftest import make_houses, small_params, write_competition


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
