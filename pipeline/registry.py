"""The model registry: each final model a new version; the champion alias moves to it only
when its OOF score is lower than the current holder's, or when nothing holds the alias yet,
or when the holder's score does not compare: another target, target scale, scored rows or
data (a new lineage starts)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping
from dataclasses import dataclass

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from pipeline.tracking import (
    CHAMPION_METRIC,
    LEGACY_CHAMPION_METRIC,
    MODEL_SHA256_TAG,
    SCORED_ROWS_TAG,
    FinalRun,
    Tracker,
)
from pipeline.tracking_store import tracking_uri

# What makes two versions' scores comparable, each a tag on every version: the target
# column, its scale (data.log_target), the rows scored (tune.objective_rows), the data
LINEAGE_TAGS = ("target", "target_scale", SCORED_ROWS_TAG, "data_hash")


def lineage(target: str, target_scale: str, scored_rows: str, data_hash: str) -> dict[str, str]:
    """The tags a version's score is comparable on (LINEAGE_TAGS)."""
    return dict(zip(LINEAGE_TAGS, (target, str(target_scale), scored_rows, data_hash),
                    strict=True))


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
    new_lineage: tuple[str, ...] = ()  # how the holder differs ("target_scale none -> log")

    def describe(self) -> str:
        """One line for the log: the version, and why the alias moved or stayed."""
        new = f"registered {self.name} version {self.version} ({CHAMPION_METRIC} {self.score:.5f})"
        uri = f"models:/{self.name}@{self.alias}"
        if self.previous_version is None:
            return f"{new}; first {self.alias}: {uri} -> version {self.version}"
        if self.new_lineage:
            score = "" if self.previous_score is None else f" ({self.previous_score:.5f})"
            return (f"{new}; {self.alias} version {self.previous_version} differs in "
                    f"{', '.join(self.new_lineage)}, so its {CHAMPION_METRIC}{score} does not "
                    f"compare: a new lineage, {uri} -> version {self.version}")
        if self.previous_score is None:
            return (f"{new}; {self.alias} version {self.previous_version} has no "
                    f"{CHAMPION_METRIC}, so {uri} -> version {self.version}")
        if self.promoted:
            return (f"{new}; beats {self.alias} version {self.previous_version} "
                    f"({self.previous_score:.5f}): {uri} -> version {self.version}")
        return (f"{new}; {self.alias} stays version {self.previous_version} "
                f"({self.previous_score:.5f} is not beaten)")


def register_final_model(tracker: Tracker, final: FinalRun, name: str, alias: str,
                         comparable_on: Mapping[str, str],
                         description: str = "") -> Registration:
    """Register the final model as a new version of `name`, tagged with `comparable_on`
    (`lineage(...)`); give it `alias` when its OOF score is lower than the current holder's,
    or nothing holds the alias yet, or the holder's tags differ (its score does not compare:
    a new lineage). `description` goes on the version; the registered model gets one saying
    what its versions are."""
    client = tracker.client
    run = client.get_run(final.run_id)
    score = run.data.metrics[CHAMPION_METRIC]
    previous = _alias_holder(tracker, name, alias)
    previous_score = None if previous is None else _version_score(tracker, previous)
    differs = () if previous is None else _differences(previous, comparable_on)
    # MLflow prints "Successfully registered model ..." and "Created version ..." itself;
    # Registration.describe() says that and what happened to the alias
    with tracking_uri(tracker.uri), contextlib.redirect_stderr(io.StringIO()):
        version = mlflow.register_model(
            final.model_uri, name,
            tags={CHAMPION_METRIC: f"{score:.6f}", **comparable_on,
                  "mlflow.source.git.commit": tracker.tags["mlflow.source.git.commit"],
                  **{k: v for k, v in run.data.tags.items() if k == MODEL_SHA256_TAG}})
    promoted = bool(differs) or previous_score is None or score < previous_score
    if promoted:
        client.set_registered_model_alias(name, alias, version.version)
    if description:
        client.update_model_version(name, version.version, description=description)
    if not client.get_registered_model(name).description:  # a user's own description stays
        client.update_registered_model(name, description=model_description(name, alias))
    return Registration(name=name, alias=alias, version=str(version.version), score=score,
                        promoted=promoted,
                        previous_version=None if previous is None else str(previous.version),
                        previous_score=previous_score, new_lineage=differs)


def model_description(name: str, alias: str) -> str:
    """What the registered model holds, for its page in the UI."""
    return (f"Final models of the tabular MLP pipeline, one version per `train` stage run. "
            f"The alias `{alias}` marks the version with the lowest `{CHAMPION_METRIC}` "
            f"(out-of-fold RMSE on the model scale) so far: load it as "
            f"`models:/{name}@{alias}`. Each version takes the raw test frame and returns the "
            "submission (id, prediction); its source run holds the scores, learning curves "
            f"and plots. `{CHAMPION_METRIC}` compares like with like only on the same target, "
            "target scale, scored rows and data (the tags `target`, `target_scale`, "
            f"`{SCORED_ROWS_TAG}`, `data_hash`): a version differing from the `{alias}` in "
            "any of them starts a new lineage and takes the alias.")


def _differences(version: ModelVersion, comparable_on: Mapping[str, str]) -> tuple[str, ...]:
    """How a version's lineage tags differ from `comparable_on`: "key old -> new" each."""
    return tuple(f"{key} {version.tags.get(key, 'not recorded')} -> {value}"
                 for key, value in comparable_on.items() if version.tags.get(key) != value)


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
