"""The real service plus one bare route, ``GET /bench/constant``, for ``bench_release_permission.py``.

Not part of the service. Run as a script it serves like ``aireg serve`` does (uvicorn, one worker, the
app's own logging config, no access log), only with this factory:
``python bench/bench_app.py --host 127.0.0.1 --port 8000``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi import FastAPI

from app.main import serving_app as create_service_app


def create_app() -> FastAPI:
    """The registry app with ``/bench/constant``: an ``async def`` returning constant JSON."""
    app = create_service_app()

    @app.get("/bench/constant", include_in_schema=False)
    async def constant() -> dict[str, Any]:
        return {"allowed": True, "reasons": []}

    # Matched first, so the baseline pays no route scan at all (the strictest comparison).
    app.router.routes.insert(0, app.router.routes.pop())
    return app


def main() -> None:
    """Serve ``create_app`` with the settings of ``aireg serve``."""
    import uvicorn

    from app.db import migrate
    from app.logging import logging_config
    from app.settings import get_settings

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    migrate()
    uvicorn.run(
        "bench.bench_app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=1,
        access_log=False,
        log_config=logging_config(get_settings().log_level, access_log=False),
    )


if __name__ == "__main__":
    main()
