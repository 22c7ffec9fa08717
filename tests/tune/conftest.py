"""The synthetic competition's folds, and a study in a SQLite file under tmp_path."""

import pytest

from pipeline.cv import setup_folds
from pipeline.data.validate import load_competition
from pipeline.tune.objective import make_pruner
from pipeline.tune.study import open_study


@pytest.fixture
def setup(config):
    train, _, schema = load_competition(config.data)
    return setup_folds(train, schema, config), config


def open_(cfg, tmp_path, name="s"):
    return open_study(f"sqlite:///{tmp_path / 'optuna.db'}", name, cfg.base.seed,
                      cfg.tune.n_startup_trials, make_pruner(cfg.tune.pruner))
