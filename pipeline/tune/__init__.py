"""The Optuna study: objective (search space, pruner, identity), study (storage, workers,
heartbeats), trials (records and tables), session (a study opened with its MLflow run)."""
