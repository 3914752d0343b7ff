"""Which aireg systems a registered MLflow model feeds: made by ``aireg mlflow sync``, read by the webhook."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from app.db import UTCDateTime


class MlflowLink(SQLModel, table=True):
    """Registered model ``model_name`` is synced into system ``system_id``; new versions follow by webhook."""

    __tablename__ = "mlflow_link"

    model_name: str = Field(primary_key=True, max_length=256)  # MLflow's limit on registered model names
    system_id: str = Field(primary_key=True, foreign_key="ai_system.id", max_length=16)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
