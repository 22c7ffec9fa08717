"""The served model: an MLflow pyfunc that takes the raw test frame and returns the submission.

It wraps the final model's pickle (`FinalModel.validated` and `predict_typed`, the code the
predict stage runs), with a signature that names the test file's columns and leaves their
types to that check, as `predict` does: numbers are numbers and any cell may be missing.
The pickle's SHA-256 record travels with it and is checked before it is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema

from pipeline.data.errors import DataError
from pipeline.io import load_pickle, sha256_record


class SubmissionModel(mlflow.pyfunc.PythonModel):
    """The served model: raw test frame in (as read from test.csv), id and prediction out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = load_pickle(context.artifacts["final_model"],
                                 context.artifacts["final_model_sha256"])

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        schema = self.model.schema
        if len(model_input) == 0:
            raise DataError("request", "no rows to predict (the request holds none)")
        frame = self.model.validated(model_input, "request")
        return pd.DataFrame({schema.id_column: frame[schema.id_column].to_numpy(),
                             schema.target: self.model.predict_typed(frame)})


def log_pyfunc(model_path: Path, input_example: pd.DataFrame,
               output_example: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """Log the served model into the active run, with the model file's SHA-256 record; its
    signature takes the input example's columns (test.csv's), of any type, all optional."""
    with warnings.catch_warnings():  # the inputs' inferred types are replaced below
        warnings.filterwarnings("ignore", message=".*Integer columns.*")
        signature = infer_signature(input_example, output_example)
    signature.inputs = served_inputs(input_example.columns)
    return mlflow.pyfunc.log_model(
        name="model",
        python_model=SubmissionModel(),
        artifacts={"final_model": str(model_path),
                   "final_model_sha256": str(sha256_record(model_path))},
        code_paths=[str(Path(__file__).parent)],
        signature=signature,
        input_example=input_example,
        pip_requirements=_requirements(),
    )


def served_inputs(columns: Iterable[str]) -> Schema:
    """The served model's input signature: each column of any type, optional. MLflow's typed
    columns refuse what `predict` accepts: `double` refuses int64 (a float column of
    train.csv written as whole numbers in a request), `long` refuses float64 and NaN (a gap
    in an integer column, or in any column that had none in training), `string` refuses an
    all-missing column (float64 NaN). The model checks and types the frame itself
    (`FinalModel.validated`, what prepare runs on test.csv), naming the column and row."""
    return Schema([ColSpec(AnyType(), name, required=False) for name in columns])


def _requirements() -> list[str]:
    names = ["torch", "pandas", "numpy", "scikit-learn", "scipy", "mlflow", "pydantic",
             "ruamel.yaml"]
    return [f"{name}=={version(name)}" for name in names]
