"""reference: cross-validate the reference models on the MLP's folds and features, the GBM
boosting at most the plan's rounds; keep the fitted fold models (with their SHA-256 record)
so the train stage can blend them in."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from sklearn.exceptions import ConvergenceWarning

from pipeline.config import Config
from pipeline.cv import fit_fold_features, setup_folds
from pipeline.data.prepared import load_prepared
from pipeline.io import atomic_dir, save_pickle, write_csv, write_json
from pipeline.plan import TIME_CAP_FILE, cap_record, read_plan
from pipeline.progress import steps
from pipeline.reference import References, references_frame, score_references
from pipeline.runtime import record_time, set_threads, timings_dir

log = logging.getLogger("pipeline")


def run(cfg: Config, prepared_dir: Path, plan_dir: Path, out_dir: Path) -> dict:
    """Write `out_dir`: oof_predictions.csv, reference_metrics.json, reference_models.pkl
    and its SHA-256 record reference_models.pkl.sha256, time_cap.json (whether the stage's
    time cap cut the GBM short)."""
    started = time.monotonic()
    threads = set_threads(None, cfg.base.threads)
    prepared = load_prepared(prepared_dir)
    with steps(cfg.cv.n_folds, "fold preprocessing", "folds") as progress:
        setup = setup_folds(prepared.train, prepared.schema, cfg,
                            on_fold=lambda _: progress.update(), level_codes=False)
    trees = None
    if cfg.reference.gbm_categoricals == "native":
        with steps(cfg.cv.n_folds, "tree preprocessing", "folds") as progress:
            trees = fit_fold_features(prepared.train, setup.folds, prepared.schema,
                                      cfg.features, cfg.base.seed,
                                      on_fold=lambda _: progress.update(), trees=True)
    plan = read_plan(plan_dir)
    cfg = plan.apply(cfg)
    cap = plan.reference_cap_seconds()  # the fold preprocessing is in the plan's overhead
    with steps(2 * setup.folds.n_folds, "references", "fold fits") as progress, \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        refs = score_references(setup, cfg.reference, cfg.base.seed,
                                seconds=cap, threads=threads,
                                on_fold=lambda name, k: progress.update(1, model=name),
                                trees=trees)
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
    cut = _cut(refs, cfg.reference.gbm_max_rounds, cap)
    if cut:
        log.warning("TIME CAP: %s", cut)
    ids = prepared.train[prepared.schema.id_column]
    with atomic_dir(out_dir) as tmp:
        write_csv(tmp / "oof_predictions.csv", references_frame(refs, ids, setup.y))
        write_json(tmp / "reference_metrics.json", refs.scores)
        write_json(tmp / TIME_CAP_FILE, cap_record("reference", cap, cut))
        save_pickle(tmp / "reference_models.pkl", refs)
    record_time(timings_dir(prepared_dir), "reference", started)
    return refs.scores


def _cut(refs: References, max_rounds: int, cap: float) -> str | None:
    """What the stage's time cap cut, in a sentence, or None."""
    gbm = refs.members.get("gbm")
    capped = sum(bool(getattr(e, "capped_", False)) for e in gbm.estimators) if gbm else 0
    if not capped:
        return None
    return (f"the reference stage's time cap ({cap / 60:.1f} min) cut the GBM short on "
            f"{capped} of {len(gbm.estimators)} folds (fewer rounds than its early stopping or "
            f"the plan's {max_rounds} would give, no refit): its scores, and the blend, depend "
            "on this machine's speed")
