"""A vendor's JSON API on the HTTP provider's ``HttpHook``: the one HTTP client of the hub.

- One ``requests`` session per hook (keep-alive), built by ``HttpHook.get_conn`` so TLS verification,
  proxies and certs follow the connection as they do for every HTTP-provider hook. The connection
  needs no extras (``HttpHook`` would send unknown extras as HTTP headers); ``verify`` may name a CA
  bundle, but a connection that turns verification off is refused.
- Bearer auth: each vendor hook says where its token comes from (:meth:`VendorApiHook.bearer_token`);
  on a 401 it may renew it (:meth:`VendorApiHook.renew_token`) and the call is tried once more.
- 429 and 5xx are retried with exponential backoff (honouring ``Retry-After``) through tenacity, the
  same retry engine as ``HttpHook.run_with_advanced_retry``; what still fails after that fails the
  task, and Airflow's own task retries take over.
- A vendor not reached at all is retried until ``[benefits_hub] vendor_unreachable_seconds``, then
  fails the stage at once in words (:class:`~benefits_hub.hooks.reach.VendorUnreachable`).
- Vendor error bodies are never logged whole: only status, the vendor's error code and a redacted
  message reach an exception or a log line.
- Vendors answer in one envelope: ``{"status", "errors", "data"}``; :meth:`VendorApiHook.call`
  returns ``data``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar

import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

from benefits_hub import codec
from benefits_hub.hooks.reach import (
    VendorUnreachable,
    cause_in_words,
    unreachable_message,
    unreachable_seconds,
)
from benefits_hub.pii import redact

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = 60.0  # seconds to wait for a vendor to answer, unless the connection says otherwise
CONNECT_TIMEOUT = 15.0
JSON_HEADERS = {"Content-Type": "application/json"}
# Not reached at all (refused, unknown host, no answer): retried until [benefits_hub]
# vendor_unreachable_seconds, then VendorUnreachable in words (benefits_hub.hooks.reach).
UNREACHABLE_ERRORS = (requests.ConnectionError, requests.Timeout)


def is_unreachable(exc: BaseException | None) -> bool:
    # requests calls a refused certificate a ConnectionError too; that one is not worth waiting for.
    return isinstance(exc, UNREACHABLE_ERRORS) and not isinstance(exc, requests.exceptions.SSLError)


class VendorApiError(Exception):
    """A vendor refused a call; the message is safe to log (no PII)."""

    def __init__(
        self,
        status: int,
        path: str,
        error_code: str | None,
        message: str | None,
        *,
        vendor: str = "The vendor",
        details: list[str] | None = None,
    ) -> None:
        self.status = status
        self.path = path
        self.error_code = error_code
        self.vendor_message = redact(message or "")
        self.details = [redact(str(d)) for d in details or []]
        detail = f" {self.error_code}" if self.error_code else ""
        text = f": {self.vendor_message}" if self.vendor_message else ""
        super().__init__(f"{vendor} answered {status}{detail} to {path}{text}")


class VendorApiTransientError(VendorApiError):
    """429/5xx: worth retrying."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


def no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


class _BearerAuth(AuthBase):
    def __init__(self, hook: VendorApiHook) -> None:
        self._hook = hook

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._hook.bearer_token()}"
        return request


def _wait_for_retry(retry_state: tenacity.RetryCallState) -> float:
    backoff = tenacity.wait_exponential(multiplier=0.5, max=30)(retry_state)
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(exc, VendorApiTransientError) and exc.retry_after:
        return max(backoff, min(exc.retry_after, 120.0))
    return backoff


class VendorApiHook(HttpHook):
    """Base of the vendor API hooks (PlanSource, iJoin)."""

    vendor_name: ClassVar[str] = "The vendor"
    api_path: ClassVar[str] = ""

    def __init__(self, conn_id: str, *, request_attempts: int = 5, timeout: float | None = None) -> None:
        super().__init__(method="GET", http_conn_id=conn_id)
        self.request_attempts = request_attempts
        self._timeout = timeout

    @property
    def timeout(self) -> float:
        """Seconds to wait for an answer: the caller's, else the connection's ``timeout`` extra (an
        HttpHook option, never sent as a header), else 60. A call that times out is retried."""
        if self._timeout is not None:
            return self._timeout
        _ = self.session  # building the session reads the connection's extras into merged_extra
        configured = self.merged_extra.get("timeout")
        return float(configured) if configured not in (None, "") else DEFAULT_TIMEOUT

    # -- auth -------------------------------------------------------------------------------------
    def bearer_token(self) -> str:
        raise NotImplementedError

    def renew_token(self) -> bool:
        """Forget the token after a 401; True if a new one may help (then the call is tried again)."""
        return False

    def _extract_auth(self, connection: Any) -> Any | None:
        # The connection's login/password are credentials for a bearer token, not HTTP basic auth.
        return _BearerAuth(self)

    @cached_property
    def session(self) -> requests.Session:
        session = self.get_conn()
        if session.verify is False or str(session.verify).strip().lower() in ("false", "0", "no", "off", ""):
            # HttpHook would honour it; the hub does not send PII to a server it has not verified.
            raise ValueError(
                f"Connection '{self.http_conn_id}' turns TLS certificate verification off (verify extra): "
                "the hub refuses it. For a vendor whose certificate is signed by a private CA, set the "
                "verify extra to the path of that CA bundle instead."
            )
        return session

    @cached_property
    def _credentials(self) -> tuple[str, str]:
        connection = self.get_connection(self.http_conn_id)
        return connection.login or "", connection.password or ""

    # -- requests ---------------------------------------------------------------------------------
    def _raise_for(self, response: requests.Response, path: str) -> None:
        error_code = message = None
        details: list[str] = []
        try:
            errors = response.json().get("errors")
            if isinstance(errors, dict):
                error_code, message = errors.get("error_code"), errors.get("message")
                details = list(errors.get("details") or [])
        except ValueError:
            message = None
        if response.status_code in RETRYABLE_STATUSES:
            retry_after = response.headers.get("Retry-After")
            raise VendorApiTransientError(
                response.status_code, path, error_code, message, vendor=self.vendor_name,
                retry_after=float(retry_after) if retry_after and retry_after.isdigit() else None,
            )  # fmt: skip
        raise VendorApiError(
            response.status_code, path, error_code, message, vendor=self.vendor_name, details=details
        )

    def _send_once(self, method: str, path: str, params: dict | None, json: Any | None) -> requests.Response:
        session = self.session  # building the session also sets base_url from the connection
        url = self.base_url + self.api_path + path
        # Connecting gets less time than answering: a host that is down should not cost a minute a try.
        timeout = (min(self.timeout, CONNECT_TIMEOUT), self.timeout)
        # The body encoded once, by the hub's codec (a 500-record batch: ~1 ms, not requests' ~10 ms),
        # or ahead of the call by the caller.
        data = json if json is None or isinstance(json, codec.Encoded) else codec.dumps(json)
        headers = None if data is None else JSON_HEADERS

        def send() -> requests.Response:
            return session.request(method, url, params=params, data=data, headers=headers, timeout=timeout)

        response = send()
        if response.status_code == 401 and self.renew_token():
            response = send()
        return response

    def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any | None = None,
        not_found_ok: bool = False,
        received: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """Call ``{api_path}{path}`` and return the envelope's ``data``; retries 429/5xx with backoff.
        ``received``: reads the answer's bytes instead (:func:`codec.received_data`, a page kept as the
        bytes it came as, to be staged as it is); an answer it returns ``None`` for is decoded as usual,
        which says what is wrong with it."""

        def attempt() -> Any:
            response = self._send_once(method, path, params, json)
            if response.status_code == 404 and not_found_ok:
                return None
            if response.status_code >= 400:
                self._raise_for(response, path)
            return self._data(response, path, received)

        bound = unreachable_seconds()

        def unreachable(state: tenacity.RetryCallState) -> bool:
            exc = state.outcome.exception() if state.outcome else None
            return is_unreachable(exc)

        def stop(state: tenacity.RetryCallState) -> bool:
            # Not reached at all: keep trying until the bound. Answered with 429/5xx: a few attempts.
            if unreachable(state):
                return (state.seconds_since_start or 0.0) >= bound
            return state.attempt_number >= self.request_attempts

        def wait(state: tenacity.RetryCallState) -> float:
            delay = _wait_for_retry(state)
            if unreachable(state):  # never sleep past the bound
                return max(min(delay, bound - (state.seconds_since_start or 0.0)), 0.0)
            return delay

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(
                lambda e: isinstance(e, VendorApiTransientError) or is_unreachable(e)
            ),
            wait=wait,
            stop=stop,
            before_sleep=self._log_retry,
            reraise=True,
        )
        started = time.monotonic()
        try:
            return retrying(attempt)
        except UNREACHABLE_ERRORS as exc:
            if not is_unreachable(exc):
                raise  # a certificate the hub refuses: said by requests as it is, never retried
            waited = time.monotonic() - started
            message = unreachable_message(self.vendor_name, self.http_conn_id, self.base_url, waited, exc)
            raise VendorUnreachable(message) from None

    def _data(
        self, response: requests.Response, path: str, received: Callable[[bytes], Any] | None = None
    ) -> Any:
        """The envelope's ``data``; an answer that is not a whole JSON envelope says so plainly."""
        kept = received(response.content) if received is not None else None
        if kept is not None:
            return kept
        try:
            body = codec.loads(response.content)
        except ValueError:
            # Cut off on the way (a dropped connection, a proxy's error page): another try may get it whole.
            raise VendorApiTransientError(
                response.status_code, path, "incomplete_answer",
                f"the answer is not complete JSON ({len(response.content)} bytes); it was probably cut off",
                vendor=self.vendor_name,
            ) from None  # fmt: skip
        if not isinstance(body, dict):
            raise VendorApiError(
                response.status_code, path, "unexpected_answer", "the answer is not a JSON object",
                vendor=self.vendor_name,
            )  # fmt: skip
        return body.get("data")

    def _log_retry(self, retry_state: tenacity.RetryCallState) -> None:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        sleep = retry_state.next_action.sleep if retry_state.next_action else 0
        if is_unreachable(exc):
            self.log.warning(
                "%s call to %s failed (attempt %s): %s; retrying in %.1fs",
                self.vendor_name, self.base_url, retry_state.attempt_number, cause_in_words(exc), sleep,
            )  # fmt: skip
            return
        self.log.warning(
            "%s call failed (attempt %s of %s): %s; retrying in %.1fs",
            self.vendor_name, retry_state.attempt_number, self.request_attempts, exc, sleep,
        )  # fmt: skip
