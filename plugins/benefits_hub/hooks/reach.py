"""A vendor that cannot be reached: how long the hub keeps trying, and what it then says.

A refused connection, an unknown host or a server that never answers is retried with backoff for at
most ``[benefits_hub] vendor_unreachable_seconds`` (default 180). Then the stage fails at once, with
no Airflow retry on top (the bound *was* the wait), and its message names the vendor, the connection,
the address and what to check, instead of the HTTP library's "Max retries exceeded with url".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
DEFAULT_UNREACHABLE_SECONDS = 180.0


class VendorUnreachable(Exception):
    """A vendor that did not answer within the bound; the message is for the person on call."""


def unreachable_seconds() -> float:
    """``[benefits_hub] vendor_unreachable_seconds``."""
    from airflow.configuration import conf

    seconds = conf.getfloat(
        "benefits_hub", "vendor_unreachable_seconds", fallback=DEFAULT_UNREACHABLE_SECONDS
    )
    return max(seconds, 0.0)


def cause_in_words(exc: BaseException) -> str:
    """What went wrong on the wire, in words (the library's text names pools and urllib3 classes)."""
    import errno

    # paramiko's NoValidConnectionsError keeps each address's socket error in ``errors``.
    errnos = {getattr(e, "errno", None) for e in (getattr(exc, "errors", None) or {}).values()}
    text = str(exc).lower()
    if isinstance(exc, ConnectionRefusedError) or errno.ECONNREFUSED in errnos or "refused" in text:
        return "connection refused (nothing listens there, or a firewall rejects it)"
    if "name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return "the host name is unknown"
    if "timed out" in text or "timeout" in text:
        return "no answer in time"
    if "reset" in text or "aborted" in text or "closed" in text:
        return "the server closed the connection"
    return "the connection failed"


def unreachable_message(vendor: str, conn_id: str, address: str, waited: float, exc: BaseException) -> str:
    return (
        f"{vendor} could not be reached at {address} (connection '{conn_id}') for {waited:.0f} s: "
        f"{cause_in_words(exc)}. Check the connection's host and port and that the service is up, then "
        "clear the failed task. How long the hub tries: [benefits_hub] vendor_unreachable_seconds."
    )


def retry_until_reachable(
    call: Callable[[], T],
    *,
    unreachable: tuple[type[BaseException], ...],
    vendor: str,
    conn_id: str,
    address: str,
    log: Any,
) -> T:
    """``call()``, tried again with backoff while it fails with one of ``unreachable`` for at most the
    bound; then :class:`VendorUnreachable` in words. Any other error is raised at once."""
    import tenacity

    bound = unreachable_seconds()
    started = time.monotonic()

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        sleep = state.next_action.sleep if state.next_action else 0
        cause = cause_in_words(exc or Exception())
        log.warning("%s not reached at %s (attempt %s): %s; retrying in %.1fs",
                    vendor, address, state.attempt_number, cause, sleep)  # fmt: skip

    def wait(state: tenacity.RetryCallState) -> float:
        delay = float(tenacity.wait_exponential(multiplier=0.5, max=30)(state))
        return max(min(delay, bound - (time.monotonic() - started)), 0.0)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(unreachable),
        wait=wait,
        stop=tenacity.stop_after_delay(bound),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return retrying(call)
    except unreachable as exc:
        waited = time.monotonic() - started
        raise VendorUnreachable(unreachable_message(vendor, conn_id, address, waited, exc)) from None
