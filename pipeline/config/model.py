"""The model and how it is scored and assembled: `base:`, `cv:`, `model:`, `ensemble:`,
`reference:`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from pipeline.config.fields import Finite, Scaling, Section


class CVConfig(Section):
    """K-fold split; folds against the training rows is checked when the data is loaded."""

    n_folds: StrictInt = Field(5, ge=2, le=100)


class ModelConfig(Section):
    """MLP shape and training schedule; any field can be tuned by naming it in tune.search_space."""

    depth: StrictInt = Field(2, ge=1, le=16)
    width: StrictInt = Field(256, ge=1, le=16384)
    dropout: Finite = Field(0.1, ge=0, lt=1)
    activation: Literal["relu", "silu", "gelu", "tanh"] = "relu"
    linear_skip: StrictBool = False  # add a linear term of the inputs to the MLP's output
    clip_to_target_range: StrictBool = False  # clip predictions to the fitted targets' range
    epochs: StrictInt = Field(200, ge=1, le=100_000)
    batch_size: StrictInt = Field(128, ge=1, le=10_000_000)
    lr: Finite = Field(1e-3, gt=0, le=10)
    weight_decay: Finite = Field(1e-2, ge=0, le=100)
    input_l1: Finite = Field(0.0, ge=0, le=100)  # decoupled L1 shrinkage of the input layer
    lr_schedule: Literal["constant", "cosine", "onecycle"] = "onecycle"
    patience: StrictInt = Field(0, ge=0)  # checkpoints without improvement before stopping
    eval_every: StrictInt = Field(5, ge=1)  # epochs between validation checks


class EnsembleConfig(Section):
    """How the final model is assembled from the tuned MLP."""

    n_seeds: StrictInt = Field(1, ge=1, le=100)  # the K fold models, trained this many times
    # numeric scalings the tuned MLP is trained on, one fold-fitted preprocessing each; the
    # MLP's prediction averages them (different views of the data make errors less alike)
    feature_views: tuple[Scaling, ...] = ()
    # references blended with the MLP; weights >= 0 summing to 1, fitted on OOF predictions
    blend_with: tuple[Literal["linear", "gbm"], ...] = ()

    @field_validator("feature_views", "blend_with")
    @classmethod
    def _distinct(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(values)) != len(values):
            raise ValueError("lists a value twice")
        return values


class ReferenceConfig(Section):
    """The reference models scored beside the MLP on the same folds and features."""

    linear_alpha: Finite = Field(0.0005, gt=0)  # Lasso penalty
    gbm_max_iter: StrictInt = Field(3000, ge=1, le=1_000_000)
    gbm_learning_rate: Finite = Field(0.01, gt=0, le=1)
    gbm_max_leaf_nodes: StrictInt = Field(6, ge=2)
    gbm_min_samples_leaf: StrictInt = Field(10, ge=1)
    gbm_max_features: Finite = Field(0.2, gt=0, le=1)  # share of features each split considers
    gbm_l2_regularization: Finite = Field(0.0, ge=0)


class BaseConfig(Section):
    """Settings every stage shares."""

    seed: StrictInt = Field(42, ge=0, le=2**31 - 1)  # fold split, numpy, torch and Optuna
    threads: StrictInt = Field(0, ge=0, le=1024)  # torch threads per process; 0 = all cores
