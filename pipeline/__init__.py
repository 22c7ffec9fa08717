"""A Kaggle-style tabular regression pipeline: K-fold MLP, Optuna, MLflow, DVC.

The stages are callable from Python without the CLI; see `pipeline.workflow`.
"""
