from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from benefits_hub import codec
from benefits_hub.hooks.plansource import PlanSourceError, PlanSourceHook, PlanSourceTransientError
from tests.unit.conftest import status_counts


def test_lookup_by_employee_number(sandbox: Any) -> None:
    hook = PlanSourceHook()
    found = hook.get_subscriber("E000010")
    assert found is not None and found["employee_number"] == "E000010"
    assert hook.get_subscriber("E999999") is None


def test_pages_through_every_subscriber_each_as_the_bytes_it_came_as(sandbox: Any) -> None:
    asked_before = _requests(sandbox, "subscribers")
    lines = list(PlanSourceHook().iter_subscriber_lines(per_page=50))
    numbers = [number for number, _line in lines]
    assert len(numbers) == len(set(numbers)) == 199  # everyone but the seeded new hire
    assert numbers == sorted(numbers)  # in order, though fetched two pages at a time
    assert _requests(sandbox, "subscribers") - asked_before == 4  # no page past the end asked for
    # Staged as they are: each line one whole subscriber, under its own number, as PlanSource holds it.
    assert all(b"\n" not in line for _number, line in lines)
    staged = {number: codec.loads(line) for number, line in lines}
    assert all(subscriber["employee_number"] == number for number, subscriber in staged.items())
    assert staged["E000010"] == PlanSourceHook().get_subscriber("E000010")


def test_coverage_pages_come_in_order_with_the_bytes_received_and_none_past_the_end(sandbox: Any) -> None:
    asked_before = _requests(sandbox, "payroll_coverages_subscribers")
    pages = list(PlanSourceHook().iter_payroll_coverage_pages("2020-01-01", "2030-12-31", per_page=100))
    # Fetched two at a time, handed on in order: every record once, each page the one it says it is.
    assert [page["page"] for page in pages] == list(range(1, len(pages) + 1)) and len(pages) > 2
    ids = [c["id"] for page in pages for c in page["payroll_coverages"]]
    assert len(ids) == len(set(ids)) == pages[0]["total"]
    asked = _requests(sandbox, "payroll_coverages_subscribers") - asked_before
    assert asked == len(pages)  # no page past the end asked for
    # The import stages each page as these bytes: they must decode to exactly the page it was given.
    assert all(isinstance(page, codec.Received) for page in pages)
    assert all(codec.loads(page.raw) == page and b"\n" not in page.raw for page in pages)


def test_a_page_that_fails_for_good_stops_the_pages_there(sandbox: Any, faults: Any) -> None:
    hook = PlanSourceHook(request_attempts=1)
    pages = hook.iter_payroll_coverage_pages("2020-01-01", "2030-12-31", per_page=100)
    assert next(pages)["page"] == 1
    faults(500, 5)  # pages 2 and 3 (already asked for) fail, and so would any retry
    with pytest.raises(PlanSourceTransientError) as failed:
        list(pages)
    assert failed.value.status == 500


def _requests(sandbox: Any, path: str) -> int:
    stats = requests.get(f"{sandbox.plansource_url}/sandbox/stats", timeout=5).json()["data"]
    return int(stats["requests_by_path"].get(f"GET /admin/v2/{path}", 0))


def test_retries_5xx_bursts_with_backoff(sandbox: Any, faults: Any) -> None:
    before = status_counts(sandbox)
    faults(503, 1)
    faults(502, 1)
    started = time.monotonic()
    assert PlanSourceHook().get_subscriber("E000010") is not None
    assert time.monotonic() - started >= 0.5  # backed off before retrying
    after = status_counts(sandbox)
    assert after.get("503", 0) - before.get("503", 0) == 1
    assert after.get("502", 0) - before.get("502", 0) == 1


def test_honours_retry_after_on_429(sandbox: Any, faults: Any) -> None:
    faults(429, 1, retry_after=2)
    started = time.monotonic()
    assert PlanSourceHook().get_subscriber("E000010") is not None
    assert time.monotonic() - started >= 2.0


def test_gives_up_after_the_configured_attempts(sandbox: Any, faults: Any) -> None:
    faults(500, 10)
    with pytest.raises(PlanSourceTransientError) as failed:
        PlanSourceHook(request_attempts=2).get_subscriber("E000010")
    assert failed.value.status == 500
    assert "PlanSource answered 500" in str(failed.value)


def test_expired_token_is_renewed_and_the_call_retried(sandbox: Any, faults: Any) -> None:
    import requests

    requests.post(f"{sandbox.plansource_url}/sandbox/token_ttl", json={"seconds": 1}, timeout=5)
    hook = PlanSourceHook()
    assert hook.get_subscriber("E000010") is not None
    first_token = hook._token
    # The hook believes its token is still good (a clock skew, say); PlanSource says it has expired.
    hook._token_expires_at = time.monotonic() + 3600
    time.sleep(1.2)
    before = status_counts(sandbox)
    assert hook.get_subscriber("E000011") is not None
    assert hook._token != first_token
    assert status_counts(sandbox).get("401", 0) - before.get("401", 0) == 1


def test_wrong_credentials_fail_clearly(sandbox: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import os

    conn = json.loads(os.environ["AIRFLOW_CONN_PLANSOURCE_API"])
    conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_PLANSOURCE_BAD", json.dumps(conn))
    with pytest.raises(PlanSourceError) as refused:
        PlanSourceHook("plansource_bad").get_subscriber("E000010")
    assert refused.value.status == 401
    assert "not-the-secret" not in str(refused.value)


def test_bulk_update_sends_only_given_fields(sandbox: Any) -> None:
    import requests

    hook = PlanSourceHook()
    [result] = hook.update_subscribers([{"employee_number": "E000012", "city": "Waverly Hills"}])
    assert result["status"] == "updated"
    changes = requests.get(
        f"{sandbox.plansource_url}/sandbox/changes", params={"employee_number": "E000012"}, timeout=5
    ).json()["data"]
    assert changes[-1]["fields"] == ["city"]


def test_connection_test(sandbox: Any) -> None:
    assert PlanSourceHook().test_connection() == (True, "Connection successfully tested")


def test_many_lookups_take_one_filtered_list_call_per_batch(sandbox: Any) -> None:
    def list_calls() -> int:
        return _requests(sandbox, "subscribers")

    numbers = [f"E{n:06d}" for n in range(1, 201)] + ["E999999"]  # 200 in PlanSource (but the new hire)
    before = list_calls()
    found = dict(PlanSourceHook().lookup_many(numbers, batch=80))

    assert list_calls() - before == 3  # 201 numbers, 80 per call
    assert list(found) == numbers  # every number answered, in the order asked
    assert found["E999999"] is None and found["E000010"]["employee_number"] == "E000010"
    assert found["E000010"] == PlanSourceHook().get_subscriber("E000010")  # the same record either way
    assert sum(s is None for s in found.values()) == 2  # the unknown one and the seeded new hire
