"""How ``aireg serve`` builds the application: its start-up heap frozen out of the collector's walk."""

from __future__ import annotations

import gc

from fastapi.testclient import TestClient


def test_serving_app_freezes_its_start_up_heap_and_tests_apps_do_not(db: None) -> None:
    from app.main import create_app, serving_app

    gc.unfreeze()
    with TestClient(create_app()) as client:
        assert client.get("/healthz").status_code == 200
        assert gc.get_freeze_count() == 0  # a test's app: everything stays collectable
    try:
        with TestClient(serving_app()) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > 10_000  # routes, models, catalogues: out of every collection
    finally:
        gc.unfreeze()
