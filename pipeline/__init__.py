"""A Kaggle-style tabular regression pipeline: K-fold MLP, Optuna, MLflow, DVC.

Each stage is `python -m pipeline <stage>` (see `pipeline.stages`); the pure parts
(`pipeline.cv`, `pipeline.final`, ...) are callable from Python on DataFrames.
"""
