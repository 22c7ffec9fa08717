"""The model and how it is scored and assembled: `base:`, `cv:`, `model:`, `ensemble:`,
`reference:`."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictBool, StrictInt, field_validator

from pipeline.config.fields import AUTO, Finite, Scaling, Section, auto_or

Schedule = Literal["constant", "flat_cos"]


class CVConfig(Section):
    """K-fold split; folds against the training rows is checked when the data is loaded."""

    n_folds: StrictInt = Field(5, ge=2, le=100)


class ModelConfig(Section):
    """MLP shape and training schedule; any field can be tuned by naming it in
    tune.search_space. docs/model.md says what each piece is and what it did."""

    depth: StrictInt = Field(2, ge=1, le=16)
    width: StrictInt = Field(256, ge=1, le=16384)
    dropout: Finite = Field(0.1, ge=0, lt=1)  # the rate at the start of training
    dropout_schedule: Schedule = "constant"  # flat_cos: constant, then down to 0
    activation: Literal["relu", "silu", "gelu", "tanh", "mish", "selu"] = "relu"
    linear_skip: StrictBool = False  # add a linear term of the inputs to the MLP's output
    clip_to_target_range: StrictBool = False  # clip predictions to the fitted targets' range
    # "auto": the plan derives them from the rows, the columns and the budget; a number wins
    epochs: auto_or(Annotated[StrictInt, Field(ge=1, le=100_000)]) = AUTO
    batch_size: auto_or(Annotated[StrictInt, Field(ge=1, le=10_000_000)]) = AUTO
    lr: auto_or(Annotated[Finite, Field(gt=0, le=10)]) = AUTO
    lr_schedule: Literal["constant", "cosine", "onecycle", "coslog4"] = "onecycle"
    weight_decay: Finite = Field(1e-2, ge=0, le=100)  # decoupled, per unit learning rate
    weight_decay_schedule: Schedule = "constant"
    adam_beta2: Finite = Field(0.999, ge=0, lt=1)
    # standard: one learning rate for every parameter (AdamW); ntk: RealMLP's rates per kind
    # of parameter (weights at lr / sqrt(fan_in), biases at lr / 10, input scales at 6 lr)
    parametrization: Literal["standard", "ntk"] = "standard"
    # uniform: nn.Linear's; data: each layer rescaled to unit spread on the training rows,
    # its biases placed among them (RealMLP's)
    init: Literal["uniform", "data"] = "uniform"
    front_scale: StrictBool = False  # a learned scale per numeric input, starting at 1
    # TabM-style members sharing each model's weights (1: a plain MLP); their losses are
    # averaged in training, their predictions in use
    members: StrictInt = Field(1, ge=1, le=64)
    input_l1: Finite = Field(0.0, ge=0, le=100)  # decoupled L1 shrinkage of the input layer
    patience: StrictInt = Field(0, ge=0)  # checkpoints without improvement before stopping
    eval_every: auto_or(Annotated[StrictInt, Field(ge=1)]) = AUTO  # epochs between checks
    # pbld: each numeric input becomes learned periodic features (RealMLP's); ple: its
    # piecewise-linear encoding over `ple_bins` quantile bins of the fold (docs/model.md)
    numeric_embedding: Literal["none", "pbld", "ple"] = "none"
    ple_bins: StrictInt = Field(16, ge=2, le=256)
    embedding_dim: StrictInt = Field(3, ge=1, le=256)  # per feature, besides the input itself
    embedding_frequencies: StrictInt = Field(16, ge=1, le=1024)
    embedding_scale: Finite = Field(0.1, gt=0, le=100)  # the frequencies' initial spread
    # values learned per level of a wide category (features.wide_categories: embedding)
    category_embedding_dim: StrictInt = Field(8, ge=1, le=256)

    @property
    def resolved(self) -> bool:
        """Whether every size is a number (the plan has filled in the "auto" ones)."""
        return all(getattr(self, name) != AUTO for name in AUTO_MODEL_FIELDS)


AUTO_MODEL_FIELDS = ("epochs", "batch_size", "lr", "eval_every")
MAX_BUDGET_MINUTES = 60 * 24 * 30  # base.budget_minutes: at most a month


class EnsembleConfig(Section):
    """How the final model is assembled from the tuned MLP."""

    # the K fold models are trained this many times; auto: as many as the budget allows
    n_seeds: auto_or(Annotated[StrictInt, Field(ge=1, le=100)]) = AUTO
    # the seeds trained together in one batch (every fold's model of each); auto: the plan's,
    # all of them where one batch of them costs less than training them one at a time, as
    # measured (on large data a batch of many models outgrows the caches: docs/sizing.md)
    seed_batch: auto_or(Annotated[StrictInt, Field(ge=1, le=100)]) = AUTO
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
    """The reference models scored beside the MLP on the same folds: a Lasso on the MLP's
    features and LightGBM, early-stopped on a held-out share of each fold's fitting rows, on
    the same features with its categories native (`gbm_categoricals: native`: one integer
    code per column, split by LightGBM's own categorical splits) or one-hot as the MLP's."""

    linear_alpha: Finite = Field(0.0005, gt=0)  # Lasso penalty
    gbm_categoricals: Literal["native", "onehot"] = "native"
    # auto: the plan's, by the rows and by the rounds its time share holds (docs/sizing.md)
    gbm_learning_rate: auto_or(Annotated[Finite, Field(gt=0, le=1)]) = AUTO
    gbm_num_leaves: auto_or(Annotated[StrictInt, Field(ge=2, le=131_072)]) = AUTO
    gbm_min_child_samples: StrictInt = Field(10, ge=1)
    gbm_feature_fraction: Finite = Field(0.5, gt=0, le=1)  # share of features per tree
    gbm_lambda_l2: Finite = Field(1.0, ge=0)
    gbm_max_rounds: StrictInt = Field(10_000, ge=1, le=1_000_000)
    gbm_early_stopping_rounds: StrictInt = Field(200, ge=1)
    gbm_validation_share: Finite = Field(0.1, gt=0, lt=1)  # held out for early stopping
    # then boost again on all the fold's fitting rows, for the rounds found / (1 - share)
    gbm_refit: StrictBool = True


class BaseConfig(Section):
    """Settings every stage shares."""

    seed: StrictInt = Field(42, ge=0, le=2**31 - 1)  # fold split, numpy, torch and Optuna
    threads: StrictInt = Field(0, ge=0, le=1024)  # torch threads per process; 0 = all cores
    # the whole `dvc repro`, planned by the plan stage: what "auto" sizes and counts get
    budget_minutes: Finite = Field(15.0, gt=0, le=MAX_BUDGET_MINUTES)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when torch sees a GPU
