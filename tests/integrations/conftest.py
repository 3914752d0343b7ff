"""Fixtures of the integration tests: the operations tests' plant and people (``ops``)."""

from tests.operations.conftest import long_lived_user, ops  # noqa: F401
