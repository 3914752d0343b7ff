#!/usr/bin/env bash
# Regenerate the initial schema revision from the models (only while no database has been deployed).
set -euo pipefail
cd "$(dirname "$0")/.."
exec 9>/tmp/aireg-regen.lock
flock 9
tmp=$(mktemp -d)
rm -f migrations/versions/*_initial_schema.py
AIREG_DATABASE_URL="sqlite:///$tmp/gen.db" .venv/bin/alembic revision --autogenerate -m "initial schema" >/dev/null
.venv/bin/ruff format -q migrations/versions >/dev/null 2>&1 || true
AIREG_DATABASE_URL="sqlite:///$tmp/gen.db" .venv/bin/alembic upgrade head
AIREG_DATABASE_URL="sqlite:///$tmp/gen.db" .venv/bin/alembic check
rm -rf "$tmp"
