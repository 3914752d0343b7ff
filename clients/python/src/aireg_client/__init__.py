"""aireg-client: ask an aireg registry whether a model version may be released (the CI release gate)."""

from __future__ import annotations

__version__ = "0.1.0"

from aireg_client._retry import RetryPolicy
from aireg_client.client import AsyncClient, Client, NoDecision
from aireg_client.models import Reason, ReleaseDecision

__all__ = ["AsyncClient", "Client", "NoDecision", "Reason", "ReleaseDecision", "RetryPolicy", "__version__"]
