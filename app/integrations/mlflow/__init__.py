"""The MLflow model registry bridge (REST only): ``aireg mlflow sync|gate``, and registry webhooks in."""
