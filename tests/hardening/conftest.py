"""Fixtures shared with the approval tests (a team of signers in STR, systems made through the API)."""

from tests.approvals.conftest import make_system, team  # noqa: F401 - re-exported fixtures
