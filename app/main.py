"""create_app(): routers, error handlers, middleware; nothing else."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app import apidocs, problems
from app.approvals.router import release_router
from app.approvals.router import router as approvals_router
from app.audit.router import router as audit_router
from app.classification.router import router as classification_router
from app.compliance.questionnaire_router import router as questionnaire_router
from app.compliance.router import router as compliance_router
from app.compliance.training_router import router as training_router
from app.db import migrate
from app.documents.conformity_router import router as conformity_router
from app.documents.router import router as documents_router
from app.governance.router import router as governance_router
from app.health import router as health_router
from app.identity.router import router as identity_router
from app.incidents.router import router as incidents_router
from app.integrations.mlflow.router import router as mlflow_router
from app.kpis.router import router as kpis_router
from app.logging import configure_logging
from app.middleware import InputLimitsMiddleware, RequestContextMiddleware
from app.monitoring.router import router as monitoring_router
from app.replication.router import router as replication_router
from app.reviews.router import router as reviews_router
from app.security.router import router as security_router
from app.settings import get_settings
from app.startup import check_startup
from app.systems.router import router as systems_router
from app.technical_file.router import router as technical_file_router
from app.web import router as web_router
from app.web import static_files
from app.web.errors import PageErrorMiddleware, render_error
from app.web.session import BrowserSessionMiddleware, WebPrincipalMiddleware
from app.wiring import wire
from app.zones.router import router as zones_router


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    check_startup()  # a broken data file or secret stops the service here, naming the file and key
    migrate()
    if app.state.freeze_heap:
        # What start-up built (routes, models, catalogues, policies) lives as long as the process: moved out
        # of the collector's generations, a full collection no longer walks it. Unfrozen, each full
        # collection stalled every request in flight for 100+ ms (the release gate's p99 at 16 connections
        # went from 10 ms to 110-160 ms on PostgreSQL; bench/bench_release_permission.py).
        gc.collect()
        gc.freeze()
    yield


def serving_app() -> FastAPI:
    """The application as ``aireg serve`` runs it: one per process, its start-up heap frozen."""
    return create_app(freeze_heap=True)


def create_app(*, freeze_heap: bool = False) -> FastAPI:
    """The application. ``freeze_heap``: freeze what start-up built out of the garbage collector's reach
    (a serving process; not for tests, which build many apps in one process and would never free them)."""
    wire()  # cross-domain hooks (release checks, sweeps, ...); a missing one stops the start here
    configure_logging(get_settings().log_level)
    app = FastAPI(
        docs_url=None,  # served from local files by app.apidocs (no CDN)
        redoc_url=None,
        title="aireg",
        version="0.1.0",
        summary="AI governance and EU AI Act compliance registry",
        lifespan=lifespan,
    )
    problems.install(app)
    app.state.page_error_renderer = render_error  # errors outside /api are HTML pages
    app.state.freeze_heap = freeze_heap
    app.add_middleware(PageErrorMiddleware)  # a crash on a page answers the HTML error page
    app.add_middleware(WebPrincipalMiddleware)  # the browser session's user, for pages and API downloads
    app.add_middleware(BrowserSessionMiddleware)
    apidocs.install_problem_docs(app)
    app.add_middleware(InputLimitsMiddleware, openapi=app.openapi)
    app.add_middleware(RequestContextMiddleware)  # outermost: request id, access log, security headers
    apidocs.install(app)
    app.include_router(release_router)  # first: the release gate is the hot path (routes match in order)
    app.include_router(health_router)
    app.include_router(identity_router)
    app.include_router(systems_router)
    app.include_router(zones_router)
    app.include_router(classification_router)
    app.include_router(compliance_router)
    app.include_router(questionnaire_router)
    app.include_router(training_router)
    app.include_router(governance_router)
    app.include_router(audit_router)
    app.include_router(approvals_router)
    app.include_router(monitoring_router)  # monitoring reports and deployments
    app.include_router(incidents_router)
    app.include_router(replication_router)
    app.include_router(reviews_router)
    app.include_router(kpis_router)
    app.include_router(documents_router)
    app.include_router(conformity_router)
    app.include_router(technical_file_router)
    app.include_router(security_router)
    app.include_router(mlflow_router)  # MLflow registry webhooks in
    app.include_router(web_router)
    app.mount("/static", static_files(), name="static")
    return app
