"""reference: cross-validate the reference models on the MLP's folds and features; keep the
fitted fold models (with their SHA-256 record) so the train stage can blend them in."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from pipeline.config import Config
from pipeline.cv import setup_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import atomic_dir, save_pickle, write_csv, write_json
from pipeline.plan import reference_seconds
from pipeline.progress import steps
from pipeline.reference import references_frame, score_references
from pipeline.runtime import record_time, set_threads, timings_dir

log = logging.getLogger("pipeline")
GBM_SHARE = 0.8  # of the references' time; the Lasso takes far less


def run(cfg: Config, prepared_dir: Path, out_dir: Path) -> dict:
    """Write `out_dir`: oof_predictions.csv, reference_metrics.json, reference_models.pkl
    and its SHA-256 record reference_models.pkl.sha256."""
    started = time.monotonic()
    threads = set_threads(None, cfg.base.threads)
    prepared = load_prepared(prepared_dir)
    with steps(cfg.cv.n_folds, "fold preprocessing", "folds") as progress:
        setup = setup_folds(prepared.train, prepared.schema, cfg,
                            on_fold=lambda _: progress.update())
    left = reference_seconds(cfg) - (time.monotonic() - started)
    with steps(2 * setup.folds.n_folds, "references", "fold fits") as progress, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        refs = score_references(setup, cfg.reference, cfg.base.seed,
                                seconds=max(left, 1.0) * GBM_SHARE, threads=threads,
                                on_fold=lambda name, k: progress.update(1, model=name))
    for w in caught:  # any other warning goes on as it came
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    if unconverged:  # the library's multi-line warning, said once in a line
        log.info("reference linear: the Lasso did not converge on %d of %d folds (it stops "
                 "at 50 000 passes; strongly correlated columns); its score is as fitted",
                 unconverged, setup.folds.n_folds)
    for name, s in refs.scores.items():
        log.info("reference %s: OOF RMSE %.5f (%.5f without excluded rows)", name,
                 s["oof_rmse"], s["oof_rmse_fit_rows"])
    ids = prepared.train[prepared.schema.id_column]
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "oof_predictions.csv", references_frame(refs, ids, setup.y))
        write_json(tmp / "reference_metrics.json", refs.scores)
        save_pickle(tmp / "reference_models.pkl", refs)
    record_time(timings_dir(prepared_dir), "reference", started)
    return refs.scores
