"""The pipeline client (clients/python) is a separate distribution: imported from its source tree, never
installed into the service's environment; the approval fixtures (tests/conftest.py) make the systems it asks
about."""

from __future__ import annotations

import sys
from pathlib import Path

CLIENT_SRC = Path(__file__).resolve().parents[2] / "clients" / "python" / "src"
if str(CLIENT_SRC) not in sys.path:
    sys.path.insert(0, str(CLIENT_SRC))
