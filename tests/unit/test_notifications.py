"""Notification rules and messages: pure functions, no Airflow, no network."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from benefits_hub import notifications
from benefits_hub.deadlines import describe, finish_within
from benefits_hub.notifications import (
    DEADLINE_MISSED,
    Deliveries,
    NotificationRule,
    deadline_message,
    deliveries_for,
    finished_before,
    free_text,
    parse_rules,
    run_message,
)

EXPORT = "plansource_hcm_demographic_export"
SSN = "180-01-7851"


def summary(**changes: Any) -> dict[str, Any]:
    base = {
        "integration_run_name": "HCM Demographic Export 2026-03-02 10:00:00",
        "integration_name": "HCM Demographic Export",
        "integration_reference_id": "manual__2026-03-02T10:00:00+00:00",
        "status": "Completed with Errors",
        "records_processed": 200,
        "records_created": 150,
        "records_updated": 30,
        "records_skipped": 8,
        "errors": 12,
        "employees_processed": 200,
        "warnings": [],
        "error_files": ["file:///staging/plansource_hcm_demographic_export/run/error_file.csv"],
        "failure_reason": None,
        "outcomes": [],
    }
    return {**base, **changes}


def rules(*items: dict[str, Any]) -> list[NotificationRule]:
    parsed, problems = parse_rules(json.dumps(list(items)))
    assert problems == []
    return parsed


# ---- rule matching ------------------------------------------------------------------------------


def test_a_rule_matches_its_integrations_and_statuses_only() -> None:
    [rule] = rules({"integrations": [EXPORT], "statuses": ["Failed"], "email": ["ops@example.com"]})
    assert rule.matches([EXPORT], "Failed")
    assert not rule.matches([EXPORT], "Completed")
    assert not rule.matches(["ijoin_plan_sync"], "Failed")


def test_patterns_and_star_match_many_integrations() -> None:
    ijoin, everything = rules(
        {"integrations": ["ijoin_*"], "statuses": ["Successful with warnings"], "webhook_conn_id": "hook"},
        {"statuses": ["Failed"], "email": ["ops@example.com"]},  # integrations default to "*"
    )
    assert ijoin.matches(["ijoin_plan_sync"], "Successful with warnings")
    assert not ijoin.matches([EXPORT], "Successful with warnings")
    assert everything.matches(["anything_at_all"], "Failed")


def test_statuses_default_to_those_someone_must_act_on_and_ignore_case() -> None:
    default, lowercase = rules(
        {"email": ["ops@example.com"]},
        {"statuses": ["completed with errors", "deadline MISSED"], "email": ["ops@example.com"]},
    )
    assert set(default.statuses) == {"Completed with Errors", "Failed", DEADLINE_MISSED}
    assert lowercase.statuses == ["Completed with Errors", DEADLINE_MISSED]


def test_a_set_member_matches_as_its_integration_or_as_the_set() -> None:
    by_member, by_set = rules(
        {"integrations": [EXPORT], "statuses": ["Failed"], "email": ["export@example.com"]},
        {"integrations": ["plansource_benefits_set"], "statuses": ["Failed"], "webhook_conn_id": "hook"},
    )
    member = {"plansource_benefits_set", EXPORT}
    assert by_member.matches(member, "Failed") and by_set.matches(member, "Failed")
    assert not by_set.matches({EXPORT}, "Failed")  # the export run on its own is not the set


def test_deliveries_send_once_per_address_and_webhook() -> None:
    parsed = rules(
        {"statuses": ["Failed"], "email": ["a@example.com"], "webhook_conn_id": "hook"},
        {"integrations": [EXPORT], "statuses": ["Failed"], "email": ["a@example.com", "b@example.com"]},
        {"integrations": [EXPORT], "statuses": ["Failed"], "webhook_conn_id": "hook"},
        {"integrations": [EXPORT], "statuses": ["Completed"], "email": ["c@example.com"]},
        {"statuses": ["Failed"], "email": ["d@example.com"], "smtp_conn_id": "smtp_other"},
    )
    deliveries = deliveries_for(parsed, [EXPORT], "Failed")
    assert deliveries.email == {
        ("smtp_default", None): ("a@example.com", "b@example.com"),
        ("smtp_other", None): ("d@example.com",),
    }
    assert deliveries.webhooks == (("hook", ""),)
    assert not deliveries_for(parsed, [EXPORT], "Successful")
    assert not Deliveries()


# ---- bad configuration --------------------------------------------------------------------------


def test_no_variable_means_no_rules_and_no_problem() -> None:
    assert parse_rules(None) == ([], [])
    assert parse_rules("  ") == ([], [])


def test_invalid_json_is_reported_not_raised() -> None:
    parsed, [problem] = parse_rules('[{"statuses": ["Failed"],}]')
    assert parsed == []
    assert "benefits_hub.notifications is not valid JSON" in problem and "line 1" in problem


def test_a_bad_rule_is_reported_by_number_and_name_and_the_others_still_apply() -> None:
    raw = json.dumps(
        [
            {"name": "payroll", "statuses": ["Failed"], "email": ["payroll@example.com"]},
            {"name": "typo", "statuses": ["Broken"], "email": ["ops@example.com"]},
            {"status": ["Failed"], "email": ["ops@example.com"]},
            {"statuses": ["Failed"], "email": ["not-an-address"]},
            {"statuses": ["Failed"]},
            "Failed",
        ]
    )
    parsed, problems = parse_rules(raw)
    assert [r.name for r in parsed] == ["payroll"]
    assert len(problems) == 5
    typo, misspelt, address, nowhere, not_object = problems
    assert "rule 2 ('typo')" in typo and "unknown status 'Broken'" in typo and "Completed with Errors" in typo
    assert "rule 3" in misspelt and "status: not a rule field" in misspelt
    assert "rule 4" in address and "not an e-mail address: 'not-an-address'" in address
    assert "rule 5" in nowhere and "sends nowhere" in nowhere
    assert "rule 6" in not_object and "JSON object" in not_object
    assert all(p.endswith("rule ignored.") for p in problems)


def test_one_rule_object_on_its_own_is_accepted_and_a_scalar_is_refused() -> None:
    parsed, problems = parse_rules('{"statuses": ["Failed"], "webhook_conn_id": "hook"}')
    assert len(parsed) == 1 and problems == []
    parsed, [problem] = parse_rules('"Failed"')
    assert parsed == [] and "must be a JSON list of rules" in problem


# ---- messages -----------------------------------------------------------------------------------


def test_run_message_says_what_which_how_many_and_where() -> None:
    message = run_message(
        summary(), dag_id=EXPORT, integration_id=EXPORT, base_url="https://airflow.example.com/"
    )
    text = message.text
    assert (
        message.subject == "[Benefits hub] Completed with Errors: HCM Demographic Export 2026-03-02 10:00:00"
    )
    assert "Integration: HCM Demographic Export (plansource_hcm_demographic_export)" in text
    assert "Run name: HCM Demographic Export 2026-03-02 10:00:00" in text
    assert "Status: Completed with Errors" in text
    assert "What failed: 12 record(s) with errors; see the error file." in text
    assert "Records: 200 processed, 150 created, 30 updated, 8 skipped, 12 with errors" in text
    assert "Error file: error_file.csv (file:///staging/" in text
    run = "manual__2026-03-02T10%3A00%3A00%2B00%3A00"
    assert f"Airflow run: https://airflow.example.com/dags/{EXPORT}/runs/{run}" in text
    monitor_run = "manual__2026-03-02T10:00:00+00:00"
    assert (
        f"Activity Monitor: https://airflow.example.com/activity-monitor/runs/{EXPORT}/{monitor_run}" in text
    )
    assert f'href="https://airflow.example.com/dags/{EXPORT}/runs/{run}"' in message.html
    assert message.webhook_payload() == {"text": text}


def test_no_ssn_birth_date_or_bank_number_reaches_a_message_even_from_a_failure_reason() -> None:
    leaky = summary(
        status="Failed",
        integration_run_name=f"rerun for {SSN}",
        failure_reason=f"PlanSource said: subscriber {SSN} (born 1980-04-12) has account 000123456789012",
        warnings=["SSN 180017851 differs", "birth date 04/12/1980 looks odd"],
        outcomes=[{"plan_id": "P0003", "status": "Failed", "messages": [f"contact ssn {SSN}"]}],
    )
    message = run_message(leaky, dag_id=EXPORT, integration_id=EXPORT, base_url=None)
    for text in (message.text, message.html, message.subject):
        for secret in (SSN, "180017851", "1980-04-12", "04/12/1980", "000123456789012", "123456789"):
            assert secret not in text
    assert "***-**-7851" in message.text  # masked the way clerks are used to seeing it
    assert message.subject == "[Benefits hub] Failed: HCM Demographic Export - rerun for ***-**-7851"
    assert "What failed: PlanSource said: subscriber ***-**-7851" in message.text
    assert "Plan P0003: Failed: contact ssn ***-**-7851" in message.text


def test_free_text_keeps_short_counts() -> None:
    assert free_text("2 plans failed; 1500 records") == "2 plans failed; 1500 records"
    assert free_text("account 12345678") == "account [number removed]"


def test_a_set_member_message_names_the_set_and_links_to_the_set_run() -> None:
    message = run_message(
        summary(integration_reference_id="manual__x"),
        dag_id="plansource_benefits_set",
        integration_id=EXPORT,
        base_url="http://localhost:8080",
    )
    assert "HCM Demographic Export (in integration set plansource_benefits_set) ended" in message.text
    assert "http://localhost:8080/dags/plansource_benefits_set/runs/manual__x" in message.text


def test_plan_outcomes_list_only_plans_that_need_a_look() -> None:
    outcomes = [
        {"plan_id": "P0001", "status": "Successful", "messages": []},
        {"plan_id": "P0002", "status": "Successful with warnings", "messages": ["line-up draft created"]},
        *({"plan_id": f"P01{i:02d}", "status": "Failed", "messages": ["no EIN"]} for i in range(6)),
    ]
    text = run_message(
        summary(outcomes=outcomes), dag_id="ijoin_plan_sync", integration_id="ijoin_plan_sync", base_url=None
    ).text
    assert "P0001" not in text
    assert "Plan P0002: Successful with warnings: line-up draft created" in text
    assert "... and 2 more plan(s)" in text


def test_deadline_message_and_the_run_that_ended_in_time() -> None:
    queued = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    deadline = queued + timedelta(minutes=45)
    dag_run = {
        "dag_id": EXPORT,
        "dag_run_id": "scheduled__2026-03-02T09:00:00+00:00",
        "state": "running",
        "queued_at": queued.isoformat(),
        "end_date": None,
        "conf": {},
    }
    message = deadline_message(dag_run, deadline_time=deadline, expected="45 minutes", base_url=None)
    assert message.subject == f"[Benefits hub] Deadline missed: {EXPORT} not finished within 45 minutes"
    assert "Status: Deadline missed (the run is running in Airflow)" in message.text
    assert "Queued at: 2026-03-02 10:00:00 UTC" in message.text
    assert "Deadline: 2026-03-02 10:45:00 UTC" in message.text
    assert f"http://localhost:8080/activity-monitor/runs/{EXPORT}/scheduled__" in message.text
    assert not finished_before(dag_run, deadline)
    # Airflow keeps the deadline of a run that *failed* in time: that run was not late.
    failed_in_time = {**dag_run, "state": "failed", "end_date": (queued + timedelta(minutes=5)).isoformat()}
    assert finished_before(failed_in_time, deadline.isoformat())
    failed_late = {**failed_in_time, "end_date": (queued + timedelta(hours=2)).isoformat()}
    assert not finished_before(failed_late, deadline)


def test_finish_within_is_an_airflow_deadline_alert_on_queued_time() -> None:
    from airflow.sdk import AsyncCallback, DeadlineReference

    alert = finish_within(timedelta(minutes=45))
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == timedelta(minutes=45)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "benefits_hub.deadlines.deadline_missed"
    assert alert.callback.kwargs == {"expected": "45 minutes"}
    assert describe(timedelta(hours=1, minutes=30)) == "1 hour 30 minutes"
    with pytest.raises(ValueError, match="positive"):
        finish_within(timedelta(0))


# ---- sending never raises -------------------------------------------------------------------------


def test_a_send_that_fails_is_a_warning_never_an_exception(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_args: Any) -> None:
        raise ConnectionRefusedError(f"[Errno 111] refused for {SSN}")

    monkeypatch.setattr(notifications, "_send_email", refuse)
    monkeypatch.setattr(notifications, "_post_webhook", refuse)
    message = run_message(summary(), dag_id=EXPORT, integration_id=EXPORT, base_url=None)
    deliveries = Deliveries({("smtp_default", None): ("ops@example.com",)}, (("hook", ""),))
    with caplog.at_level(logging.WARNING, logger="benefits_hub.notifications"):
        assert notifications.send(message, deliveries) == []
    assert len(caplog.records) == 2
    assert "could not e-mail 1 recipient(s) through connection 'smtp_default'" in caplog.text
    assert "could not post to webhook connection 'hook'" in caplog.text
    assert SSN not in caplog.text
