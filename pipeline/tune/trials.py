"""The study's trials as plain data: records, counts, the best trial, the table, importances."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import optuna

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
COMPLETE = (optuna.trial.TrialState.COMPLETE,)
METRIC_NAME = "cv_rmse"  # the objective's name, in optuna-dashboard as in MLflow
# Scores kept as trial user attributes (shown as they are by optuna-dashboard) are rounded;
# the objective value itself is not
ATTR_DECIMALS = 6
# the trial's scores on either set of rows: user attribute -> MLflow metric
ROW_SCORES = {"score_all_rows": f"{METRIC_NAME}_all_rows",
              "score_fit_rows": f"{METRIC_NAME}_fit_rows"}
# fANOVA importances fitted on fewer complete trials than this vary from one seed (or one
# more trial) to the next: they are shown with a caution
MIN_TRIALS_FOR_IMPORTANCES = 10


@dataclass(frozen=True)
class TrialRecord:
    """A finished trial as plain data, for tracking and reports."""

    number: int
    state: str  # COMPLETE, PRUNED or FAIL
    value: float | None
    params: dict
    fold_scores: list[float]
    checkpoints: dict[int, float]  # epoch -> mean validation RMSE over the folds
    started: datetime | None
    finished: datetime | None
    scores: dict[str, float] = field(default_factory=dict)  # ROW_SCORES' metric -> value

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


def finished_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def trial_counts(study: optuna.Study) -> dict[str, int]:
    """How many trials the study holds in each state (COMPLETE, PRUNED, FAIL, RUNNING...)."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    return counts


def fold_attrs(fold_scores: list[float]) -> dict[str, float]:
    """Each fold's score as its own user attribute (`fold_<k>_rmse`), rounded for display."""
    return {f"fold_{k}_rmse": round(float(v), ATTR_DECIMALS) for k, v in enumerate(fold_scores)}


def fold_scores(trial: optuna.trial.FrozenTrial) -> list[float]:
    """The trial's fold scores, from its `fold_<k>_rmse` user attributes (or the list an
    earlier version stored as `fold_scores`)."""
    attrs = trial.user_attrs
    scores = []
    while f"fold_{len(scores)}_rmse" in attrs:
        scores.append(attrs[f"fold_{len(scores)}_rmse"])
    return scores or list(attrs.get("fold_scores", []))


def to_record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        fold_scores=fold_scores(trial),
        checkpoints=dict(trial.intermediate_values),
        started=trial.datetime_start,
        finished=trial.datetime_complete,
        scores={metric: trial.user_attrs[attr] for attr, metric in ROW_SCORES.items()
                if attr in trial.user_attrs},
    )


def full_trial_seconds(study: optuna.Study) -> float | None:
    """The median wall time of the study's complete (unpruned) trials, None without any."""
    seconds = sorted(r.seconds for r in map(to_record, study.get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))) if r.seconds is not None)
    return seconds[len(seconds) // 2] if seconds else None


def best_trial(study: optuna.Study) -> TrialRecord:
    """The best complete trial; raise if the study has none."""
    complete = study.get_trials(deepcopy=False, states=COMPLETE)
    if not complete:
        raise RuntimeError(f"study {study.study_name!r} has no complete trial")
    return to_record(study.best_trial)


def trials_table(study: optuna.Study) -> list[dict]:
    """One row per trial (number, state, value, params, the trial it retries, if any)
    for the stage's trials.csv."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     "retry_of": t.system_attrs.get("failed_trial"),
                     **{f"param_{k}": v for k, v in sorted(t.params.items())}})
    return rows


def param_importances(study: optuna.Study, seed: int) -> tuple[dict[str, float], str | None]:
    """fANOVA importances of the parameters that varied over the complete trials, or an empty
    dict and the reason there are none (too few trials, nothing varied): Optuna would
    otherwise answer with equal shares that mean nothing."""
    complete = study.get_trials(deepcopy=False, states=COMPLETE)
    if len(complete) < 2:
        return {}, f"{len(complete)} complete trial(s); importances need at least 2"
    if len({t.value for t in complete}) < 2:
        return {}, "every complete trial has the same objective value"
    names = sorted({name for t in complete for name in t.params})
    varied = [n for n in names if len({repr(t.params.get(n)) for t in complete}) > 1]
    if not varied:
        return {}, "no parameter varied over the complete trials"
    evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
    try:
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator,
                                                              params=varied)
    except (ValueError, RuntimeError) as exc:  # e.g. a search space that changed mid-study
        return {}, f"Optuna could not compute them: {exc}"
    return {name: float(value) for name, value in importances.items()}, None


def importance_caution(study: optuna.Study) -> str | None:
    """A warning when the importances rest on too few complete trials to be trusted."""
    n = len(study.get_trials(deepcopy=False, states=COMPLETE))
    if n >= MIN_TRIALS_FOR_IMPORTANCES:
        return None
    return (f"parameter importances rest on {n} complete trials; below "
            f"{MIN_TRIALS_FOR_IMPORTANCES} they change from one seed or one more trial to the "
            "next (optuna-dashboard's may disagree): read them as a rough hint")
