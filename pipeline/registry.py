"""The model registry: each final model a new version; the champion alias moves to it only
when its OOF score is lower than the current holder's (or nothing holds the alias yet)."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from pipeline.tracking import CHAMPION_METRIC, MODEL_SHA256_TAG, FinalRun, Tracker, tracking_uri


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


def register_final_model(tracker: Tracker, final: FinalRun, name: str,
                         alias: str) -> Registration:
    """Register the final model as a new version of `name`; give it `alias` when its OOF
    score is lower than the current holder's (or nothing holds the alias yet)."""
    client = tracker.client
    run = client.get_run(final.run_id)
    score = run.data.metrics[CHAMPION_METRIC]
    previous = _alias_holder(tracker, name, alias)
    previous_score = None if previous is None else _version_score(tracker, previous)
    with tracking_uri(tracker.uri):
        version = mlflow.register_model(
            final.model_uri, name,
            tags={CHAMPION_METRIC: f"{score:.6f}", "data_hash": tracker.tags["data_hash"],
                  "mlflow.source.git.commit": tracker.tags["mlflow.source.git.commit"],
                  **{k: v for k, v in run.data.tags.items() if k == MODEL_SHA256_TAG}})
    promoted = previous_score is None or score < previous_score
    if promoted:
        client.set_registered_model_alias(name, alias, version.version)
    return Registration(name=name, alias=alias, version=str(version.version), score=score,
                        promoted=promoted,
                        previous_version=None if previous is None else str(previous.version),
                        previous_score=previous_score)


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
        return tracker.client.get_run(version.run_id).data.metrics.get(CHAMPION_METRIC)
    except MlflowException:  # the run was deleted for good
        return None
