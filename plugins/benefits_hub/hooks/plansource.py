"""PlanSource Admin API v2, on the hub's :class:`~benefits_hub.hooks.vendor_api.VendorApiHook`.

The connection (``plansource_api``) holds host, schema and port, and the OAuth2 client credentials as
login/password. The token and API paths are PlanSource's own and fixed, so the connection needs no
extras. A token is fetched on first use and again when PlanSource answers 401 ``invalid_token``
(expired: PlanSource's documented fix is a new token and the same call again).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from benefits_hub import codec
from benefits_hub.hooks.vendor_api import (
    VendorApiError,
    VendorApiHook,
    VendorApiTransientError,
    no_auth,
)

TOKEN_PATH = "/oauth/v2/token"  # noqa: S105 - a URL path, not a secret
API_PATH = "/admin/v2"
TOKEN_SCOPE = "admin_api_v2"  # noqa: S105 - an OAuth scope name
MAX_PAGE_SIZE = 500
T = TypeVar("T")
# Employee numbers per filtered list call: about 1.6 KB of query string, well inside any URL limit.
LOOKUP_BATCH = 200

# PlanSource's failures are the vendor API's; these names read better at PlanSource call sites.
PlanSourceError = VendorApiError
PlanSourceTransientError = VendorApiTransientError


class PlanSourceHook(VendorApiHook):
    """Talks to PlanSource's Admin API v2: subscribers (demographics) and payroll coverages."""

    conn_name_attr = "plansource_conn_id"
    default_conn_name = "plansource_api"
    conn_type = "http"
    hook_name = "PlanSource API"
    vendor_name = "PlanSource"
    api_path = API_PATH

    def __init__(
        self,
        plansource_conn_id: str = default_conn_name,
        *,
        request_attempts: int = 5,
        timeout: float | None = None,
    ) -> None:
        super().__init__(plansource_conn_id, request_attempts=request_attempts, timeout=timeout)
        self.plansource_conn_id = plansource_conn_id
        self._token: str | None = None
        self._token_expires_at = 0.0
        # Coverage pages are fetched two at a time: one token for both, fetched or renewed once.
        self._token_lock = threading.Lock()

    def bearer_token(self) -> str:
        with self._token_lock:
            # Refresh a little early so a long page loop does not race the expiry.
            if self._token is None or time.monotonic() >= self._token_expires_at - 5:
                self._fetch_token()
            return self._token  # type: ignore[return-value]

    # Kept under its old name: tests and callers ask for "the access token".
    access_token = bearer_token

    def renew_token(self) -> bool:
        with self._token_lock:
            self._token = None
        return True

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
            auth=no_auth,
            timeout=self.timeout,
        )
        if response.status_code != 200:
            self._raise_for(response, TOKEN_PATH)
        body = response.json()
        self._token = body["access_token"]
        self._token_expires_at = time.monotonic() + float(body.get("expires_in") or 300)

    # -- subscribers ------------------------------------------------------------------------------
    def get_subscriber(self, employee_number: str) -> dict[str, Any] | None:
        return self.call(
            "GET", f"/subscriber/{employee_number}", params={"is_custom_id": "true"}, not_found_ok=True
        )

    def iter_subscriber_lines(self, per_page: int = MAX_PAGE_SIZE) -> Iterator[tuple[Any, bytes]]:
        """Every subscriber as PlanSource sent it: its employee number and its JSON object's bytes (one
        line), to be staged as they came; pages fetched as :meth:`_pages_in_order` fetches them. A page
        that is not the shape PlanSource documents is refused, saying so."""
        size = min(per_page, MAX_PAGE_SIZE)

        def fetch(page: int) -> codec.ReceivedItems:
            params = {"page": page, "per_page": size}
            data = self.call("GET", "/subscribers", params=params, received=_subscriber_lines)
            if isinstance(data, codec.ReceivedItems):
                return data
            # Not kept as bytes (a page msgspec cannot read): decoded as usual, refused if not a page.
            records = self._page_records(data, "subscribers", "/subscribers")
            lines = [(record.get("employee_number"), codec.dumps(record)) for record in records]
            return codec.ReceivedItems(lines, bool(data.get("links", {}).get("next")), data.get("total"))

        for page in self._pages_in_order(fetch, size, lambda data: (len(data.items), data.more, data.total)):
            yield from page.items

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
        """Each page of payroll coverage changes in [start_date, end_date] as PlanSource sent it, in order,
        fetched as :meth:`_pages_in_order` fetches them."""
        size = min(per_page, MAX_PAGE_SIZE)

        def fetch(page: int) -> Any:
            params = {
                "start_date": start_date,
                "end_date": end_date,
                "page": page,
                "per_page": size,
                "include_test": str(include_test).lower(),
            }
            # Kept as the bytes received: the import stages each page as PlanSource sent it.
            return self.call(
                "GET", "/payroll_coverages_subscribers", params=params, received=codec.received_data
            )

        def shape(data: Any) -> tuple[int, bool, Any]:
            records = self._page_records(data, "payroll_coverages", "/payroll_coverages_subscribers")
            return len(records), bool(data.get("links", {}).get("next")), data.get("total")

        yield from self._pages_in_order(fetch, size, shape)

    @staticmethod
    def _pages_in_order(
        fetch: Callable[[int], T], size: int, shape: Callable[[T], tuple[int, bool, Any]]
    ) -> Iterator[T]:
        """Each page ``fetch`` gets, in order, until one is empty or links to no next one (``shape``: a
        page's record count, whether it links on, and the total it says, refusing a page not the shape
        PlanSource documents).

        The first page says how many records there are. Up to that count, the next page is already asked
        for while this one is decoded and handed on (two requests in flight), so a million records take
        about PlanSource's time per page rather than PlanSource's time plus ours. Past the count (records
        added meanwhile) ``links.next`` is followed a page at a time; no page past the end is asked for.
        """
        data = fetch(1)
        records, more, total = shape(data)
        yield data
        if not more or not records:
            return
        pages = -(-total // size) if isinstance(total, int) and not isinstance(total, bool) else 1
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="plansource-pages")
        ahead = {n: pool.submit(fetch, n) for n in range(2, min(3, pages) + 1)}
        try:
            page = 2
            while True:
                asked = ahead.pop(page, None)
                data = asked.result() if asked is not None else fetch(page)
                if page + 2 <= pages:
                    ahead[page + 2] = pool.submit(fetch, page + 2)
                records, more, _total = shape(data)
                yield data
                if not more or not records:
                    return
                page += 1
        finally:
            # Stopped early (fewer records than the count said, an error, a consumer that stopped): the
            # pages asked for ahead are not needed; one already on its way is waited for, not left running.
            pool.shutdown(wait=True, cancel_futures=True)

    def _page_records(self, data: Any, key: str, path: str) -> list[dict[str, Any]]:
        """A page's records, or a clear refusal when the page is not the shape PlanSource documents."""
        records = data.get(key) if isinstance(data, dict) else None
        if records is None and isinstance(data, dict) and key in data:
            records = []  # an explicit null: an empty page
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            raise PlanSourceError(
                200, path, "unexpected_page", f"the page has no list of {key.replace('_', ' ')}",
                vendor=self.vendor_name,
            )  # fmt: skip
        return records

    def lookup_many(
        self, employee_numbers: Iterable[str], batch: int = LOOKUP_BATCH
    ) -> Iterator[tuple[str, dict[str, Any] | None]]:
        """Each number with its subscriber (``None``: PlanSource has none), ``batch`` numbers per call
        through the list's ``employee_numbers`` filter: 2,000 employees are 10 calls, not 2,000."""
        numbers = iter(employee_numbers)
        while chunk := list(itertools.islice(numbers, batch)):
            found: dict[str, dict[str, Any]] = {}
            page = 1
            while True:
                params = {"employee_numbers": ",".join(chunk), "page": page, "per_page": MAX_PAGE_SIZE}
                data = self.call("GET", "/subscribers", params=params)
                for subscriber in self._page_records(data, "subscribers", "/subscribers"):
                    found[str(subscriber.get("employee_number"))] = subscriber
                if not data.get("links", {}).get("next"):
                    break
                page += 1
            for number in chunk:
                yield number, found.get(number)

    def test_connection(self) -> tuple[bool, str]:
        try:
            self.call("GET", "/subscriber/meta")
        except Exception as exc:
            return False, str(exc)
        return True, "Connection successfully tested"


def _subscriber_lines(answer: bytes) -> codec.ReceivedItems | None:
    return codec.received_items(answer, "subscribers", "employee_number")
