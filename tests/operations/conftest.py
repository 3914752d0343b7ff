"""Fixtures for the operations tests: a plant with people in every role and a driver for the API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from app.db import set_clock_offset


@pytest.fixture
def travel() -> Iterator[Callable[[datetime | timedelta], None]]:
    """Move the service clock: to an absolute UTC instant, or by a delta from the real now."""

    def go(when: datetime | timedelta) -> None:
        if isinstance(when, timedelta):
            set_clock_offset(when)
        else:
            set_clock_offset(when - datetime.now(UTC))

    yield go
    set_clock_offset(None)
