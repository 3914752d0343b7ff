"""create_app(): routers, error handlers, middleware; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import problems
from app.audit.router import router as audit_router
from app.classification.router import router as classification_router
from app.classification.catalog import get_catalog
from app.db import migrate
from app.identity.router import router as identity_router
from app.systems.router import router as systems_router
from app.zones.router import router as zones_router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    get_catalog()  # a broken catalogue stops the service here, naming the file and key
    migrate()
    yield


def create_app() -> FastAPI:
    app = FastAPI(
        title="aireg",
        version="0.1.0",
        summary="AI governance and EU AI Act compliance registry",
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(identity_router)
    app.include_router(systems_router)
    app.include_router(zones_router)
    app.include_router(classification_router)
    app.include_router(audit_router)
    return app
