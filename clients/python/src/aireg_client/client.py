"""Sync and async clients for the release gate, ``GET /api/v1/release-permission``."""

from __future__ import annotations

from typing import Any

import httpx

from aireg_client import __version__
from aireg_client._retry import RETRY_ERRORS, RetryPolicy, send_with_retries, send_with_retries_async
from aireg_client.models import ReleaseDecision

ENVIRONMENTS = ("pilot", "production")
PATH = "/api/v1/release-permission"


class NoDecision(Exception):
    """The service gave no decision: unreachable, or it answered an error (bad token, unknown system...).

    ``status`` is the HTTP status (None when unreachable); ``body`` the raw answer, if there was one."""

    def __init__(
        self, message: str, *, status: int | None = None, body: str | None = None, attempts: int = 1
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.attempts = attempts


class _Base:
    def __init__(
        self, base_url: str, token: str, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5
    ) -> None:
        if not token:
            raise ValueError("no API token")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.policy = RetryPolicy(retries=retries, backoff=backoff)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "User-Agent": f"aireg-client/{__version__}",
        }

    def _params(
        self, system: str, version: str, environment: str, artifact_digest: str | None
    ) -> dict[str, str]:
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {', '.join(ENVIRONMENTS)}")
        params = {"system": system, "version": version, "environment": environment}
        if artifact_digest:
            params["artifact_digest"] = artifact_digest
        return params

    def _decision(self, response: httpx.Response, attempts: int) -> ReleaseDecision:
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        if response.status_code != 200:
            detail = body.get("detail") if isinstance(body, dict) else None
            raise NoDecision(
                f"HTTP {response.status_code}: {detail or response.reason_phrase}; no decision",
                status=response.status_code,
                body=response.text,
                attempts=attempts,
            )
        try:
            return ReleaseDecision.from_json(body, attempts=attempts)
        except ValueError as exc:
            raise NoDecision(str(exc), status=200, body=response.text, attempts=attempts) from None

    def _unreachable(self, exc: Exception) -> NoDecision:
        tries = self.policy.retries + 1 if isinstance(exc, RETRY_ERRORS) else 1
        return NoDecision(f"could not reach {self.base_url} ({tries} attempt(s)): {exc}", attempts=tries)


class Client(_Base):
    """A release gate client; retries connection errors, timeouts and 503 with exponential backoff.

    ``with Client(url, token) as gate: decision = gate.release_permission("AIS-000001", "v1")``"""

    def __init__(
        self, base_url: str, token: str, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5
    ) -> None:
        super().__init__(base_url, token, timeout, retries, backoff)
        self._http = httpx.Client(headers=self._headers, timeout=timeout)

    def release_permission(
        self,
        system: str,
        version: str,
        environment: str = "production",
        artifact_digest: str | None = None,
    ) -> ReleaseDecision:
        """May ``version`` of ``system`` run in ``environment`` now? Raises ``NoDecision`` if unanswered."""
        params = self._params(system, version, environment, artifact_digest)
        url = self.base_url + PATH
        try:
            response, attempts = send_with_retries(lambda: self._http.get(url, params=params), self.policy)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._unreachable(exc) from exc
        return self._decision(response, attempts)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class AsyncClient(_Base):
    """``Client`` for asyncio.

    ``async with AsyncClient(url, token) as gate: decision = await gate.release_permission(...)``"""

    def __init__(
        self, base_url: str, token: str, timeout: float = 10.0, retries: int = 3, backoff: float = 0.5
    ) -> None:
        super().__init__(base_url, token, timeout, retries, backoff)
        self._http = httpx.AsyncClient(headers=self._headers, timeout=timeout)

    async def release_permission(
        self,
        system: str,
        version: str,
        environment: str = "production",
        artifact_digest: str | None = None,
    ) -> ReleaseDecision:
        """May ``version`` of ``system`` run in ``environment`` now? Raises ``NoDecision`` if unanswered."""
        params = self._params(system, version, environment, artifact_digest)
        url = self.base_url + PATH
        try:
            response, attempts = await send_with_retries_async(
                lambda: self._http.get(url, params=params), self.policy
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise self._unreachable(exc) from exc
        return self._decision(response, attempts)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()
