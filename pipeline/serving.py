"""The served model: an MLflow pyfunc that takes the raw test frame and returns the submission.

It wraps the final model's pickle (`FinalModel.validated` and `predict_typed`, the code the
predict stage runs), with a signature that accepts the competition's data as pandas reads it.
The pickle's SHA-256 record travels with it and is checked before it is loaded.
"""

from __future__ import annotations

import warnings
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import infer_signature
from mlflow.types import DataType
from mlflow.types.schema import AnyType, ColSpec, Schema

from pipeline.io import load_pickle, sha256_record


class SubmissionModel(mlflow.pyfunc.PythonModel):
    """The served model: raw test frame in (as read from test.csv), id and prediction out."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.model = load_pickle(context.artifacts["final_model"],
                                 context.artifacts["final_model_sha256"])

    def predict(self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        schema = self.model.schema
        frame = self.model.validated(model_input, "request")
        return pd.DataFrame({schema.id_column: frame[schema.id_column].to_numpy(),
                             schema.target: self.model.predict_typed(frame)})


def log_pyfunc(model_path: Path, signature_frame: pd.DataFrame, input_example: pd.DataFrame,
               output_example: pd.DataFrame) -> mlflow.models.model.ModelInfo:
    """Log the served model into the active run, with the model file's SHA-256 record."""
    with warnings.catch_warnings():  # integer columns here have no gap in the data
        warnings.filterwarnings("ignore", message=".*Integer columns.*")
        signature = infer_signature(signature_frame, output_example)
    signature.inputs = _missing_value_safe(signature.inputs)
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


def _missing_value_safe(schema: Schema) -> Schema:
    """Text columns that can be missing accept any type: pandas reads a text column that is
    empty in a given file (or a one-row request with a gap) as float64 NaN, which a strict
    `string` column would reject. Numeric columns with gaps are already double."""
    columns = []
    for col in schema.inputs:
        if col.type == DataType.string and not col.required:
            col = ColSpec(AnyType(), col.name, required=False)
        columns.append(col)
    return Schema(columns)


def _requirements() -> list[str]:
    names = ["torch", "pandas", "numpy", "scikit-learn", "scipy", "mlflow", "pydantic",
             "ruamel.yaml"]
    return [f"{name}=={version(name)}" for name in names]
