"""The Optuna study's storage and its workers: storages, the seeded sampler, heartbeats and
stale-trial retries, the election of one worker, and the loop that runs trials."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
import warnings
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages.journal import JournalFileBackend
from packaging.version import InvalidVersion, Version

from pipeline.config import ModelConfig, TuneConfig
from pipeline.plan import Plan
from pipeline.services import ServiceError, masked
from pipeline.tune.trials import FINISHED, METRIC_NAME, TrialRecord, to_record

RUNNING = optuna.trial.TrialState.RUNNING
log = logging.getLogger("pipeline")
PARENT_RUN_ATTR = "mlflow_parent_run_id"
CONNECT_TIMEOUT_SECONDS = 10  # a storage server that does not answer fails the stage, no hang
SET_BY = "set by tune.storage in params.yaml or OPTUNA_STORAGE"
MAX_FAILURES_IN_A_ROW = 5


def quiet_optuna() -> None:
    """Leave progress reporting to the CLI: Optuna logs only warnings, and heartbeats, stale
    trial retries and the constant liar (experimental for years, relied on here) stay quiet."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    for handler in logging.getLogger("optuna").handlers:  # Ctrl-C gets one line, from the CLI
        handler.addFilter(_not_an_interrupt)


def _not_an_interrupt(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], KeyboardInterrupt))


def worker_id() -> str:
    """Who ran a trial: host and process id, recorded on every trial."""
    return f"{socket.gethostname()}:{os.getpid()}"


def make_storage(url: str, cfg: TuneConfig) -> optuna.storages.BaseStorage:
    """The study storage behind a URL, with heartbeats and stale-trial retries where possible.

    Database URLs (sqlite:///, postgresql+psycopg://, mysql+pymysql://) give Optuna's RDB
    storage: a trial whose process stops beating for `grace_period` seconds is marked FAIL
    and queued again (RetryHeartbeatStaleTrialCallback). `journal:PATH` gives the journal
    file storage (several processes on one machine, no heartbeat). A server that cannot be
    reached fails within CONNECT_TIMEOUT_SECONDS with ServiceError; so does a database that
    is damaged (not a database) or whose tables another Optuna version wrote.
    """
    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    engine_kwargs: dict = {"pool_pre_ping": True}
    if url.startswith(("postgresql", "mysql")):
        engine_kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    heartbeat = {}
    if cfg.heartbeat_interval is not None:
        heartbeat = {
            "heartbeat_interval": cfg.heartbeat_interval,
            "grace_period": cfg.grace_period or 2 * cfg.heartbeat_interval,
            "heartbeat_stale_trial_callback":
                optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=cfg.max_retries),
        }
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **heartbeat)
        except sqlalchemy.exc.OperationalError as exc:
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise ServiceError(f"cannot reach the Optuna storage {masked(url)}: {reason} "
                               f"({SET_BY})") from exc
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == 4:  # several workers creating the tables at once: one wins, retry
                raise
            time.sleep(0.2 * (attempt + 1))
        except sqlalchemy.exc.DatabaseError as exc:  # e.g. a SQLite file of other bytes
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            anew = ("move the file aside and a new study starts" if url.startswith("sqlite")
                    else "point tune.storage at a new database")
            raise ServiceError(f"cannot use the Optuna storage {masked(url)}: {reason}: it is "
                               f"damaged, or not an Optuna storage; restore it from a backup, "
                               f"or {anew} ({SET_BY})") from exc
        except RuntimeError as exc:  # Optuna: the tables' schema is not this version's
            raise ServiceError(_other_schema(url, exc)) from exc
        except (sqlalchemy.exc.ArgumentError, ImportError) as exc:
            raise ServiceError(f"not a storage URL Optuna can use: {masked(url)} ({exc}); "
                               "e.g. postgresql+psycopg://user:password@host:5432/db or "
                               "sqlite:///path/optuna.db or journal:path/journal.log") from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _other_schema(url: str, exc: RuntimeError) -> str:
    """What to do about a storage whose tables another Optuna version wrote: which version
    (read from the storage itself), and upgrade Optuna or the storage."""
    written_by = None
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            written_by = connection.execute(
                sqlalchemy.text("SELECT library_version FROM version_info")).scalar()
    except sqlalchemy.exc.SQLAlchemyError:
        pass
    finally:
        engine.dispose()
    where = f"cannot use the Optuna storage {masked(url)}"
    try:
        newer = Version(str(written_by)) > Version(optuna.__version__)
    except InvalidVersion:
        return f"{where}: {str(exc).strip().splitlines()[0]} ({SET_BY})"
    if newer:
        return (f"{where}: its tables were written by Optuna {written_by}, newer than the "
                f"installed {optuna.__version__}, which cannot read them: upgrade Optuna "
                f"(pip install -U optuna), or use another storage ({SET_BY})")
    return (f"{where}: its tables were written by Optuna {written_by}, older than the "
            f"installed {optuna.__version__}: back it up and run `optuna storage "
            f"upgrade --storage {masked(url)}`, or use another storage ({SET_BY})")


def open_study(storage: str | optuna.storages.BaseStorage | None, name: str, seed: int,
               n_startup_trials: int, pruner: optuna.pruners.BasePruner, *,
               worker: str | None = None) -> optuna.Study:
    """Create the study, or load it if the storage already holds one of that name.

    The sampler's seed is offset by the trials the study already holds: a resumed study then
    draws new points (re-seeding with the bare seed would replay the first random trials),
    and the same history still gives the same next trials. A `worker` (one of several
    processes sharing the study) also offsets it by its id, so workers started together do
    not draw the same points, and its sampler lies about trials still running elsewhere
    (constant liar) so it does not propose their points again. Several workers make the
    sequence of trials depend on timing: a distributed study is not reproducible.
    """
    study = optuna.create_study(storage=storage, study_name=name, direction="minimize",
                                load_if_exists=True)
    if study.metric_names != [METRIC_NAME]:  # optuna-dashboard's "Objective 0" otherwise
        study.set_metric_names([METRIC_NAME])
    offset = len(study.trials)
    if worker is not None:
        offset += int(hashlib.sha256(worker.encode()).hexdigest()[:6], 16)
    study.sampler = optuna.samplers.TPESampler(seed=seed + offset,
                                               n_startup_trials=n_startup_trials,
                                               constant_liar=worker is not None)
    study.pruner = pruner
    return study


def claim_once(storage: str | optuna.storages.BaseStorage, key: str) -> bool:
    """True for exactly one caller per storage and key, whatever the number of workers.

    Creating a study of a given name is atomic in every Optuna storage (a unique name in the
    database, one appender of the journal), so it serves as the election among workers.
    """
    try:
        optuna.create_study(storage=storage, study_name=key)
    except optuna.exceptions.DuplicatedStudyError:
        return False
    return True


def release_claim(storage: str | optuna.storages.BaseStorage, key: str) -> None:
    """Remove a claim once what it guarded is recorded, so it does not linger as a study."""
    try:
        optuna.delete_study(study_name=key, storage=storage)
    except KeyError:  # already gone
        pass


def run_study(study: optuna.Study, objective: Callable[[optuna.Trial], float],
              n_trials: int | None, deadline: float | None, n_jobs: int,
              on_trial: Callable[[TrialRecord], None] | None = None, *,
              wait_for_others: bool = False, max_trials: int | None = None,
              trial_estimate: float = 0.0, poll_seconds: float = 2.0,
              spend: Spend | None = None) -> list[TrialRecord]:
    """Run trials until the study holds `n_trials` finished ones (counting earlier runs and
    other workers), or with `spend` (and no n_trials) until its finished trials' planned cost
    reaches the share, or until `deadline` (time.monotonic()); return the trials this process
    ran.

    By time, a trial starts only when the time left holds one more as long as the mean of the
    trials run so far (`trial_estimate` before the first), so the last one fits; the objective
    prunes a trial still running at the deadline. Until the study holds a complete trial,
    trials go on past the deadline: a study always ends with a best trial. Trials running in
    other processes count as under way, so a worker starts one only while the study still
    needs it (workers started at the same moment may add one or two more). With
    `wait_for_others` (the tune stage), it then waits for those trials to finish or, when
    their worker died, to go stale and be retried here, and logs which trials it waits for
    and how long a dead worker's trial takes to go stale. `max_trials` bounds the trials
    this process runs. Heartbeats are needed to tell a running trial from a dead one: without
    them, trials left RUNNING are ignored.
    """
    if n_trials is None and deadline is None and spend is None:
        raise ValueError("a study needs a number of trials, a share to spend or a deadline")
    heartbeat = heartbeat_enabled(study)
    ran: list[TrialRecord] = []
    me = worker_id()

    def tagged(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", me)
        return objective(trial)

    def record(_study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        ran.append(to_record(frozen))
        if on_trial is not None:
            on_trial(ran[-1])

    failures_in_row = 0
    waiting_for: tuple[int, ...] = ()
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        durations = [r.seconds for r in ran if r.seconds is not None]
        expected = sum(durations) / len(durations) if durations else trial_estimate
        if left is not None and left <= expected and _has_complete(study):
            break
        if max_trials is not None and len(ran) >= max_trials:
            break
        if heartbeat:
            optuna.storages.fail_stale_trials(study)  # a killed worker's trial: FAIL, retried
        trials = study.get_trials(deepcopy=False)
        running = sum(t.state == RUNNING for t in trials) if heartbeat else 0
        if n_trials is None:
            if spend is not None and spend.spent(trials) >= spend.share:
                break
            startable = n_jobs
        else:
            missing = n_trials - sum(t.state in FINISHED for t in trials)
            if missing <= 0:
                break
            startable = missing - running
        if startable <= 0:
            if not wait_for_others:
                break
            running_now = [t for t in trials if t.state == RUNNING]
            if tuple(t.number for t in running_now) != waiting_for:
                waiting_for = tuple(t.number for t in running_now)
                log.info("%s", waiting_line(running_now, grace_period(study)))
            time.sleep(poll_seconds)
            continue
        batch = min(n_jobs, startable)
        if max_trials is not None:
            batch = min(batch, max_trials - len(ran))
        before = len(ran)
        study.optimize(tagged, n_trials=batch, n_jobs=batch, callbacks=[record],
                       timeout=left, catch=(FloatingPointError,))
        new = ran[before:]
        failures_in_row = failures_in_row + len(new) if new and all(
            r.state == "FAIL" for r in new) else 0
        if failures_in_row >= MAX_FAILURES_IN_A_ROW:
            raise RuntimeError(f"{failures_in_row} trials in a row failed in study "
                               f"{study.study_name!r}; see the log above for the errors")
    return ran


@dataclass(frozen=True)
class Spend:
    """A study's share in planned seconds and what a trial costs by the plan, from its params
    and the epochs of its checkpoints (its last checkpoint is its last epoch trained)."""

    share: float
    cost: Callable[[dict, Collection[int]], float]

    def spent(self, trials: list[optuna.trial.FrozenTrial]) -> float:
        return sum(self.cost(t.params, t.intermediate_values) for t in trials
                   if t.state in FINISHED)

    @classmethod
    def planned(cls, plan: Plan, model: ModelConfig) -> Spend:
        """The study's share and a trial's cost by `plan` (`Plan.trial_seconds`) for trials
        of `model` with their params."""
        return cls(plan.study_seconds, lambda params, steps: plan.trial_seconds(
            model.replace(params, "model."), max(steps, default=0), len(steps)))


def _has_complete(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))


def waiting_line(running: list[optuna.trial.FrozenTrial], grace: int | None) -> str:
    """What a study that needs no new trial is waiting for: the trials still running, where,
    and when one whose worker died is failed and run again."""
    trials = ", ".join(
        f"{t.number} (worker {t.user_attrs.get('worker', 'unknown')}, started "
        f"{t.datetime_start:%H:%M:%S})" if t.datetime_start else str(t.number) for t in running)
    stale = f" once its heartbeat is {grace} s old (tune.grace_period)" if grace else ""
    return (f"waiting for running trial{'s' if len(running) > 1 else ''} {trials}; a trial "
            f"whose worker was stopped is marked failed and run again here{stale}")


def grace_period(study: optuna.Study) -> int | None:
    """Seconds without a heartbeat after which a running trial is taken for dead."""
    interval = heartbeat_enabled(study) and study._storage.get_heartbeat_interval()
    if not interval:
        return None
    storage = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    return getattr(storage, "grace_period", None) or 2 * interval


def heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage records heartbeats (RDB storages with an interval set)."""
    interval = getattr(study._storage, "get_heartbeat_interval", None)
    return interval is not None and interval() is not None


def get_study_attr(study: optuna.Study, key: str) -> str | None:
    return study.user_attrs.get(key)


def set_study_attr(study: optuna.Study, key: str, value: str) -> None:
    study.set_user_attr(key, value)
