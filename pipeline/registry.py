"""The model registry: each final model a new version; the champion alias moves to it only
when its OOF score is lower than the current holder's (or nothing holds the alias yet)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from pipeline.tracking import (
    CHAMPION_METRIC,
    LEGACY_CHAMPION_METRIC,
    MODEL_SHA256_TAG,
    FinalRun,
    Tracker,
)
from pipeline.tracking_store import tracking_uri


@dataclass(frozen=True)
class Registration:
    """What registering a final model did: its new version, and whether it took the alias."""

    name: str
    alias: str
    version: str
    score: float
    promoted: bool
    previous_version: str | None = None  # the alias holder before, if any
    previous_score: float | None = None

    def describe(self) -> str:
        """One line for the log: the version, and why the alias moved or stayed."""
        new = f"registered {self.name} version {self.version} ({CHAMPION_METRIC} {self.score:.5f})"
        uri = f"models:/{self.name}@{self.alias}"
        if self.previous_version is None:
            return f"{new}; first {self.alias}: {uri} -> version {self.version}"
        if self.previous_score is None:
            return (f"{new}; {self.alias} version {self.previous_version} has no "
                    f"{CHAMPION_METRIC}, so {uri} -> version {self.version}")
        if self.promoted:
            return (f"{new}; beats {self.alias} version {self.previous_version} "
                    f"({self.previous_score:.5f}): {uri} -> version {self.version}")
        return (f"{new}; {self.alias} stays version {self.previous_version} "
                f"({self.previous_score:.5f} is not beaten)")


def register_final_model(tracker: Tracker, final: FinalRun, name: str, alias: str,
                         description: str = "") -> Registration:
    """Register the final model as a new version of `name`; give it `alias` when its OOF
    score is lower than the current holder's (or nothing holds the alias yet). `description`
    goes on the version; the registered model gets one saying what its versions are."""
    client = tracker.client
    run = client.get_run(final.run_id)
    score = run.data.metrics[CHAMPION_METRIC]
    previous = _alias_holder(tracker, name, alias)
    previous_score = None if previous is None else _version_score(tracker, previous)
    # MLflow prints "Successfully registered model ..." and "Created version ..." itself;
    # Registration.describe() says that and what happened to the alias
    with tracking_uri(tracker.uri), contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(
            final.model_uri, name,
            tags={CHAMPION_METRIC: f"{score:.6f}", "data_hash": tracker.tags["data_hash"],
                  "mlflow.source.git.commit": tracker.tags["mlflow.source.git.commit"],
                  **{k: v for k, v in run.data.tags.items() if k == MODEL_SHA256_TAG}})
    promoted = previous_score is None or score < previous_score
    if promoted:
        client.set_registered_model_alias(name, alias, version.version)
    if description:
        client.update_model_version(name, version.version, description=description)
    if not client.get_registered_model(name).description:  # a user's own description stays
        client.update_registered_model(name, description=model_description(name, alias))
    return Registration(name=name, alias=alias, version=str(version.version), score=score,
                        promoted=promoted,
                        previous_version=None if previous is None else str(previous.version),
                        previous_score=previous_score)


def model_description(name: str, alias: str) -> str:
    """What the registered model holds, for its page in the UI."""
    return (f"Final models of the tabular MLP pipeline, one version per `train` stage run. "
            f"The alias `{alias}` marks the version with the lowest `{CHAMPION_METRIC}` "
            f"(out-of-fold RMSE on the model scale) so far: load it as "
            f"`models:/{name}@{alias}`. Each version takes the raw test frame and returns the "
            "submission (id, prediction); its source run holds the scores, learning curves "
            f"and plots. `{CHAMPION_METRIC}` compares like with like only on the same data and "
            "folds (the `data_hash` tag).")


def _alias_holder(tracker: Tracker, name: str, alias: str) -> ModelVersion | None:
    try:
        return tracker.client.get_model_version_by_alias(name, alias)
    except MlflowException:  # no such registered model, or nothing holds the alias
        return None


def _version_score(tracker: Tracker, version: ModelVersion) -> float | None:
    """The champion metric of the run a model version came from, if that run has it."""
    if not version.run_id:
        return None
    try:
        metrics = tracker.client.get_run(version.run_id).data.metrics
    except MlflowException:  # the run was deleted for good
        return None
    return metrics.get(CHAMPION_METRIC, metrics.get(LEGACY_CHAMPION_METRIC))
