"""The export's delivery against the real sandbox API: batches, per-record refusals, retried deliveries."""

from __future__ import annotations

from typing import Any

from benefits_hub.demographics.export import _BatchSender
from benefits_hub.hooks.plansource import PlanSourceHook
from benefits_hub.staging import StagingArea


def _sender(tmp_path: Any) -> tuple[_BatchSender, Any, dict[str, int]]:
    staging = StagingArea("d", "r", base_url=tmp_path.as_uri(), conn_id="")
    counters = {
        "records_created": 0,
        "records_updated": 0,
        "terminations": 0,
        "rehires": 0,
        "already_delivered": 0,
    }
    errors_cm = staging.errors("errors/deliver.csv")
    errors = errors_cm.__enter__()
    return _BatchSender(PlanSourceHook(), errors, counters), (errors_cm, errors), counters


def _create(number: str) -> dict[str, Any]:
    return {
        "employee_number": number,
        "actions": ["create"],
        "fields": {
            "employee_number": number,
            "first_name": "Grace",
            "last_name": "Hopper",
            "ssn": "123456789",
        },
        "subscriber_id": None,
        "fingerprint": "f" * 32,
    }


def test_retried_create_counts_as_delivered_not_as_error(sandbox: Any, tmp_path: Any) -> None:
    sender, (errors_cm, errors), counters = _sender(tmp_path)
    sender.add(_create("E777001"))
    sender.flush()
    assert counters["records_created"] == 1
    # The same create again, as a retried deliver task would send it.
    sender.add(_create("E777001"))
    done = sender.flush()
    errors_cm.__exit__(None, None, None)
    assert counters["records_created"] == 1 and counters["already_delivered"] == 1
    assert errors.rows == 0
    assert done[0][3] == "already in PlanSource"


def test_refused_record_is_an_error_row_and_the_batch_goes_on(sandbox: Any, tmp_path: Any) -> None:
    sender, (errors_cm, errors), counters = _sender(tmp_path)
    bad = _create("E777002")
    bad["fields"] = {"employee_number": "E777002"}  # no name and no user_name: PlanSource refuses it
    sender.add(bad)
    sender.add(_create("E777003"))
    sender.flush()
    errors_cm.__exit__(None, None, None)
    assert counters["records_created"] == 1
    assert errors.rows == 1 and errors.records == 1
