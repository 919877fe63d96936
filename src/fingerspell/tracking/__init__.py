"""Every MLflow call of the project: store, runs, sweep parents, artifacts, registry."""
