"""PlanSource Admin API v2, on the HTTP provider's ``HttpHook``.

The connection (``plansource_api``) holds host, schema and port, and the OAuth2 client credentials as
login/password. The token and API paths are PlanSource's own and fixed, so the connection needs no
extras (``HttpHook`` would send unknown extras as HTTP headers).

- One ``requests`` session per hook (keep-alive), built by ``HttpHook.get_conn`` so TLS verification,
  proxies and certs follow the connection as they do for every HTTP-provider hook.
- OAuth2 client credentials: a token is fetched on first use and again when PlanSource answers 401
  ``invalid_token`` (expired), then the call is retried once.
- 429 and 5xx are retried with exponential backoff (honouring ``Retry-After``) through tenacity, the
  same retry engine as ``HttpHook.run_with_advanced_retry``; what is still failing after that fails
  the task, and Airflow's own task retries take over.
- Vendor error bodies are never logged whole: only status, PlanSource's error code and a redacted
  message reach an exception or a log line.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from functools import cached_property
from typing import Any

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from benefits_hub.pii import redact

TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - a URL path, not a secret
API_PATH = "/admin/v2"
TOKEN_SCOPE = "admin_api_v2"  # noqa: S105 - an OAuth scope name
MAX_PAGE_SIZE = 500
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


class PlanSourceError(Exception):
    """PlanSource refused a call; the message is safe to log (no PII)."""

    def __init__(self, status: int, path: str, error_code: str | None, message: str | None) -> None:
        self.status = status
        self.path = path
        self.error_code = error_code
        self.vendor_message = redact(message or "")
        detail = f" {self.error_code}" if self.error_code else ""
        text = f": {self.vendor_message}" if self.vendor_message else ""
        super().__init__(f"PlanSource answered {status}{detail} to {path}{text}")


class PlanSourceTransientError(PlanSourceError):
    """429/5xx: worth retrying."""

    def __init__(self, *args: Any, retry_after: float | None = None) -> None:
        super().__init__(*args)
        self.retry_after = retry_after


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _BearerAuth(AuthBase):
    def __init__(self, hook: PlanSourceHook) -> None:
        self._hook = hook

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._hook.access_token()}"
        return request


def _wait_for_retry(retry_state: tenacity.RetryCallState) -> float:
    backoff = tenacity.wait_exponential(multiplier=0.5, max=30)(retry_state)
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, PlanSourceTransientError) and exc.retry_after:
        return max(backoff, min(exc.retry_after, 120.0))
    return backoff


class PlanSourceHook(HttpHook):
    """Talks to PlanSource's Admin API v2: subscribers (demographics) and payroll coverages."""

    conn_name_attr = "plansource_conn_id"
    default_conn_name = "plansource_api"
    conn_type = "http"
    hook_name = "PlanSource API"

    def __init__(
        self,
        plansource_conn_id: str = default_conn_name,
        *,
        request_attempts: int = 5,
        timeout: float = 60.0,
    ) -> None:
        super().__init__(method="GET", http_conn_id=plansource_conn_id)
        self.plansource_conn_id = plansource_conn_id
        self.request_attempts = request_attempts
        self.timeout = timeout
        self._token: str | None = None
        self._token_expires_at = 0.0

    # -- connection -------------------------------------------------------------------------------
    def _extract_auth(self, connection: Any) -> Any | None:
        # Login/password are OAuth2 client credentials, not HTTP basic auth for API calls.
        return _BearerAuth(self)

    @cached_property
    def session(self) -> requests.Session:
        return self.get_conn()

    @cached_property
    def _credentials(self) -> tuple[str, str]:
        connection = self.get_connection(self.plansource_conn_id)
        return connection.login or "", connection.password or ""

    def access_token(self) -> str:
        # Refresh a little early so a long page loop does not race the expiry.
        if self._token is None or time.monotonic() >= self._token_expires_at - 5:
            self._fetch_token()
        return self._token  # type: ignore[return-value]

    def _fetch_token(self) -> None:
        client_id, client_secret = self._credentials
        session = self.session
        response = session.post(
            self.base_url + TOKEN_PATH,
            data={
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": client_secret,
                "scope": TOKEN_SCOPE,
            },
            # The session's bearer auth would ask for a token to get a token.
            auth=_no_auth,
            timeout=self.timeout,
        )
        if response.status_code != 200:
            self._raise_for(response, TOKEN_PATH)
        body = response.json()
        self._token = body["access_token"]
        self._token_expires_at = time.monotonic() + float(body.get("expires_in") or 300)

    # -- requests ---------------------------------------------------------------------------------
    def _raise_for(self, response: requests.Response, path: str) -> None:
        error_code = message = None
        try:
            errors = response.json().get("errors")
            if isinstance(errors, dict):
                error_code, message = errors.get("error_code"), errors.get("message")
        except ValueError:
            message = None
        if response.status_code in RETRYABLE_STATUSES:
            retry_after = response.headers.get("Retry-After")
            raise PlanSourceTransientError(
                response.status_code,
                path,
                error_code,
                message,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )
        raise PlanSourceError(response.status_code, path, error_code, message)

    def _send_once(self, method: str, path: str, params: dict | None, json: Any | None) -> requests.Response:
        session = self.session  # building the session also sets base_url from the connection
        url = self.base_url + API_PATH + path
        response = session.request(method, url, params=params, json=json, timeout=self.timeout)
        if response.status_code == 401:
            # Expired token: PlanSource's documented fix is a new token and the same call again.
            self._token = None
            response = session.request(method, url, params=params, json=json, timeout=self.timeout)
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any | None = None,
        not_found_ok: bool = False,
    ) -> Any:
        """Call ``/admin/v2{path}`` and return the envelope's ``data``; retries 429/5xx with backoff."""

        def attempt() -> Any:
            response = self._send_once(method, path, params, json)
            if response.status_code == 404 and not_found_ok:
                return None
            if response.status_code >= 400:
                self._raise_for(response, path)
            return response.json().get("data")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(
                (PlanSourceTransientError, requests.ConnectionError, requests.Timeout)
            ),
            wait=_wait_for_retry,
            stop=tenacity.stop_after_attempt(self.request_attempts),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(attempt)

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0
        self.log.warning(
            "PlanSource call failed (attempt %s of %s): %s; retrying in %.1fs",
            retry_state.attempt_number,
            self.request_attempts,
            exc,
            sleep,
        )

    # -- subscribers ------------------------------------------------------------------------------
    def get_subscriber(self, employee_number: str) -> dict[str, Any] | None:
        return self.call(
            "GET", f"/subscriber/{employee_number}", params={"is_custom_id": "true"}, not_found_ok=True
        )

    def iter_subscribers(self, per_page: int = MAX_PAGE_SIZE) -> Iterator[dict[str, Any]]:
        """Every subscriber, page by page (one page in memory at a time)."""
        page = 1
        while True:
            data = self.call("GET", "/subscribers", params={"page": page, "per_page": per_page})
            records = data.get("subscribers") or []
            yield from records
            if not data.get("links", {}).get("next") or not records:
                return
            page += 1

    def create_subscribers(self, subscribers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return self.call("POST", "/subscribers", json={"subscribers": subscribers})["results"]

    def update_subscribers(self, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each change holds ``employee_number`` and only the fields to change."""
        return self.call("PUT", "/subscribers", json={"subscribers": changes})["results"]

    def terminate_subscriber(self, employee_number: str, termination: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            "PUT",
            f"/subscriber/{employee_number}/terminate",
            params={"is_custom_id": "true"},
            json=termination,
        )

    def rehire_subscriber(self, employee_number: str, hire_date: str | None) -> dict[str, Any]:
        return self.call(
            "PUT",
            f"/subscriber/{employee_number}/rehire",
            params={"is_custom_id": "true"},
            json={"hire_date": hire_date},
        )

    # -- payroll coverages ------------------------------------------------------------------------
    def iter_payroll_coverage_pages(
        self,
        start_date: str,
        end_date: str,
        *,
        include_test: bool = False,
        per_page: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Each page of payroll coverage changes in [start_date, end_date] as PlanSource sent it."""
        page = 1
        while True:
            params = {
                "start_date": start_date,
                "end_date": end_date,
                "page": page,
                "per_page": min(per_page, MAX_PAGE_SIZE),
                "include_test": str(include_test).lower(),
            }
            data = self.call("GET", "/payroll_coverages_subscribers", params=params)
            yield data
            records = data.get("payroll_coverages") or []
            if not data.get("links", {}).get("next") or not records:
                return
            page += 1

    def lookup_many(self, employee_numbers: Iterable[str]) -> Iterator[tuple[str, dict[str, Any] | None]]:
        for number in employee_numbers:
            yield number, self.get_subscriber(number)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.call("GET", "/subscriber/meta")
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"
