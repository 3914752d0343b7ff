"""Alembic environment: the URL comes from the caller (``app.db.alembic_config``) or from settings."""

from __future__ import annotations

from alembic import context

from app import models
from app.db import make_engine
from app.settings import get_settings

config = context.config
target_metadata = models.metadata
include_object = models.include_object


def _target() -> tuple[str, str | None]:
    settings = get_settings()
    url = config.attributes.get("url") or settings.database_url
    schema = config.attributes.get("schema", settings.database_schema)
    return url, schema


def run_migrations_offline() -> None:
    url, _schema = _target()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        include_object=include_object,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url, schema = _target()
    engine = make_engine(url, schema)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.in_transaction():
            connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
