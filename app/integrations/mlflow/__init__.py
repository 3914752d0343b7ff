"""The MLflow model registry bridge (REST only): ``aireg mlflow sync`` and ``aireg mlflow gate``."""
