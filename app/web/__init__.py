"""Server-rendered pages for the people who sign: login, inventory, system page, classification wizard,
approval requests, the signer's inbox and the portfolio dashboard (templates in ``templates/``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.staticfiles import StaticFiles

from app.web import paths
from app.web.routes import approvals, auth, compliance, dashboard, systems, technical_file, wizard

STATIC_DIR = Path(__file__).resolve().parent / "static"

router = APIRouter(include_in_schema=False)
for module in (auth, dashboard, systems, wizard, approvals, compliance, technical_file):
    router.include_router(module.router)
    paths.register(module.router.routes)


def static_files() -> StaticFiles:
    """The pages' CSS and JavaScript (served from this package; no CDN)."""
    return StaticFiles(directory=STATIC_DIR)
