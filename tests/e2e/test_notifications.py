"""Run notifications, for real: DAG runs (dag.test) against the sandbox, a real SMTP server (aiosmtpd)
and a real HTTP webhook receiver on loopback, Airflow connections pointing at them, and the rules in
the Variable ``benefits_hub.notifications`` exactly as an operator would write them.

Checked: the right messages for the right statuses and none for the others, what a message says
(integration, counts, error file, links), a bad rule reported in the task log without stopping the
good ones, a member of an integration set notified like its integration, a notification that
cannot be sent leaving the run's status alone, and no seeded SSN in any message.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from hub_sandbox.recordkeeper import special_plans
from tests.e2e.conftest import TASK_LOG_DIR, run_dag
from tests.e2e.pii_scan import find_ssns
from tests.e2e.receivers import MailServer, WebhookReceiver, free_port, smtp_server, webhook_receiver

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]

EXPORT, PLAN_SYNC, SET = "plansource_hcm_demographic_export", "ijoin_plan_sync", "plansource_benefits_set"
PAYROLL = ["payroll-ops@example.test", "hr-lead@example.test"]
BASE_URL = "https://airflow.benefits.example.test"
LINEUP_CHANGED = special_plans(6)["lineup_changed"][0]
RULES = [
    {
        "name": "payroll: the export needs a person",
        "integrations": [EXPORT],
        "statuses": ["Completed with Errors", "Failed"],
        "email": PAYROLL,
        "smtp_conn_id": "hub_smtp",
        "webhook_conn_id": "hub_webhook",
    },
    {
        "name": "retirement team",
        "integrations": ["ijoin_*"],
        "statuses": ["Successful with warnings", "Failed"],
        "webhook_conn_id": "hub_webhook",
    },
    {"name": "typo", "statuses": ["Complete"], "email": ["ops@example.test"], "smtp_conn_id": "hub_smtp"},
]


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[MailServer, WebhookReceiver]]:
    """A real SMTP server and webhook receiver, and the Airflow connections the rules name for them."""
    with smtp_server() as mail, webhook_receiver() as webhook:
        monkeypatch.setenv("AIRFLOW_CONN_HUB_SMTP", mail.connection_json())
        monkeypatch.setenv("AIRFLOW_CONN_HUB_WEBHOOK", webhook.connection_json())
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE_URL)
        yield mail, webhook


@pytest.fixture
def rules() -> Iterator[Any]:
    """Sets the Variable (after clean_hub_state emptied it); removes it so later tests send nothing."""
    from airflow.models.variable import Variable

    def set_rules(value: list[dict[str, Any]]) -> None:
        Variable.set("benefits_hub.notifications", json.dumps(value))

    try:
        yield set_rules
    finally:
        Variable.delete("benefits_hub.notifications")


def seeded_ssns(sandbox: Any) -> set[str]:
    ssns: set[str] = set()
    sources = [
        (sandbox.hcm_db_path, "SELECT ssn FROM hcm_person"),
        (sandbox.plansource_state_path, "SELECT ssn FROM subscriber"),
    ]
    for db, sql in sources:
        with sqlite3.connect(db) as conn:
            ssns.update(row[0] for row in conn.execute(sql) if row[0])
    return ssns


def last_task_log(dag_id: str) -> str:
    """What the last ``run_dag`` of ``dag_id`` logged (conftest captures each run in its own file)."""
    return sorted((TASK_LOG_DIR / dag_id).glob("run-*.log"))[-1].read_text()


def assert_no_seeded_ssn(sandbox: Any, mail: MailServer, webhook: WebhookReceiver) -> None:
    ssns = seeded_ssns(sandbox)
    assert len(ssns) > 100
    texts = [(f"mail {m.subject}", m.raw) for m in mail.received]
    texts += [(f"webhook {p.path}", json.dumps(p.body)) for p in webhook.received]
    assert texts
    assert find_ssns(texts, ssns) == []


def test_right_messages_for_the_right_statuses(
    sandbox: Any, receivers: tuple[MailServer, WebhookReceiver], rules: Any
) -> None:
    mail, webhook = receivers
    rules(RULES)

    # Completed with Errors (the seeded bad people): e-mail to payroll and the webhook.
    export = run_dag(EXPORT, {"delta": False})

    summary = export.summary
    assert summary["status"] == "Completed with Errors" and export.state == "failed"
    # The bad rule is reported in the task log, naming it; the good ones still apply.
    bad_rule = "Variable benefits_hub.notifications, rule 3 ('typo'): statuses: unknown status 'Complete'"
    assert f"Notifications: {bad_rule}" in last_task_log(EXPORT)
    [email] = mail.received
    [post] = webhook.received
    assert sorted(email.rcpt_tos) == sorted(PAYROLL)
    assert email.mail_from == "benefits-hub@example.test"
    name = summary["integration_name"]
    assert email.subject == f"[Benefits hub] Completed with Errors: {summary['integration_run_name']}"
    run = quote(export.run_id, safe="")
    for text in (email.body, post.text):
        assert "Status: Completed with Errors" in text
        assert f"Integration: {name} ({EXPORT})" in text
        assert f"Reference id: {export.run_id}" in text
        assert f"What failed: {summary['errors']} record(s) with errors; see the error file." in text
        assert (
            f"Records: {summary['records_processed']} processed, {summary['records_created']} created, "
            f"{summary['records_updated']} updated, {summary['records_skipped']} skipped, "
            f"{summary['errors']} with errors"
        ) in text
        assert f"Error file: error_file.csv ({summary['error_files'][0]})" in text
        assert f"{BASE_URL}/dags/{EXPORT}/runs/{run}" in text
        assert f"{BASE_URL}/activity-monitor/runs/{EXPORT}/{quote(export.run_id, safe=':+')}" in text
    assert f'<a href="{BASE_URL}/dags/{EXPORT}/runs/{run}">' in email.body
    assert post.body == {"text": post.text} and post.headers["Content-Type"] == "application/json"

    # Failed (a refused param): only the retirement team's webhook listens to the iJoin syncs.
    refused = run_dag(PLAN_SYNC, {"plan_ids": "P9999"})
    assert refused.summary["status"] == "Failed"
    assert len(mail.received) == 1 and len(webhook.received) == 2
    failed = webhook.received[-1].text
    assert failed.startswith(f"[Benefits hub] Failed: {refused.summary['integration_run_name']}")
    assert f"What failed: {refused.summary['failure_reason']}" in failed and "plan_ids" in failed

    # Successful with warnings (a line-up draft): the webhook, with the plan that needs a look.
    warned = run_dag(PLAN_SYNC, {"plan_ids": LINEUP_CHANGED})
    assert warned.summary["status"] == "Successful with warnings" and warned.state == "success"
    assert len(webhook.received) == 3
    draft = webhook.received[-1].text
    assert draft.startswith("[Benefits hub] Successful with warnings: iJoin Plan Sync 20")
    assert f"Plan {LINEUP_CHANGED}: Successful with warnings" in draft

    # Successful: no rule listens, nothing is sent.
    quiet = run_dag(PLAN_SYNC, {"plan_ids": "P0001"})
    assert quiet.summary["status"] == "Successful"
    assert "Notifications: no rule asks to be told about Successful runs" in last_task_log(PLAN_SYNC)
    assert len(mail.received) == 1 and len(webhook.received) == 3

    assert_no_seeded_ssn(sandbox, mail, webhook)


def test_a_set_member_is_notified_like_its_integration(
    sandbox: Any, receivers: tuple[MailServer, WebhookReceiver], rules: Any
) -> None:
    mail, webhook = receivers
    rules(RULES)

    outcome = run_dag(SET, {"export": {"delta": False}, "import": {"delta": True, "lookback_days": 1}})

    assert outcome.summary["stopped_by"] == "export"
    # The export member matched the export's rule; the import never ran, so it sent nothing.
    [email] = mail.received
    [post] = webhook.received
    assert sorted(email.rcpt_tos) == sorted(PAYROLL)
    run = quote(outcome.run_id, safe="")
    for text in (email.body, post.text):
        assert f"HCM Demographic Export (in integration set {SET}) ended Completed with Errors." in text
        assert "Integration: PlanSource HCM Demographic Export (plansource_hcm_demographic_export)" in text
        assert f"{BASE_URL}/dags/{SET}/runs/{run}" in text
    assert_no_seeded_ssn(sandbox, mail, webhook)


def test_a_notification_that_cannot_be_sent_leaves_the_run_alone(
    sandbox: Any, monkeypatch: pytest.MonkeyPatch, rules: Any
) -> None:
    # Nothing listens on these ports: the mail server and the webhook are "down".
    closed = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_SMTP", MailServer("127.0.0.1", closed).connection_json())
    down_webhook = {"conn_type": "http", "host": f"http://127.0.0.1:{closed}/hook"}
    monkeypatch.setenv("AIRFLOW_CONN_DOWN_WEBHOOK", json.dumps(down_webhook))
    rules(
        [
            {
                "integrations": [EXPORT],
                "statuses": ["Completed"],
                "email": ["ops@example.test"],
                "smtp_conn_id": "down_smtp",
                "webhook_conn_id": "down_webhook",
            }
        ]
    )
    good = [f"E{i:06d}" for i in range(10, 200)]

    outcome = run_dag(EXPORT, {"delta": False, "include_employees": good[40]})

    assert outcome.summary["status"] == "Completed"
    assert outcome.state == "success" and outcome.task_states["summary"] == "success"
    log = last_task_log(EXPORT)
    assert "Notifications: could not e-mail 1 recipient(s) through connection 'down_smtp'" in log
    assert "Notifications: could not post to webhook connection 'down_webhook'" in log


def test_a_run_whose_summary_breaks_before_it_could_tell_anyone_is_still_notified(
    sandbox: Any, receivers: tuple[MailServer, WebhookReceiver], rules: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summary task is what notifies; when it fails before writing the Run Summary (here its store
    stops answering), its failure callback tells the rules' people that the run failed, and why."""
    from benefits_hub.integration import Integration

    mail, webhook = receivers
    rules(RULES)

    def store_gone(self: Integration, end: Any = None) -> Any:
        raise ConnectionError("the staging store did not answer")

    monkeypatch.setattr(Integration, "build_summary", store_gone)  # the one fault injected
    outcome = run_dag(EXPORT, {"delta": True, "lookback_days": 1})

    assert outcome.summary is None and outcome.task_states["summary"] == "failed"
    [email] = mail.received
    [post] = webhook.received
    for text in (email.body, post.text):
        assert "ended Failed" in text, text
        assert "failed before its Run Summary was written" in text
        assert "ConnectionError: the staging store did not answer" in text
    assert sorted(email.rcpt_tos) == sorted(PAYROLL)
