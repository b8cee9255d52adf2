"""Run notifications: who is told about which run, and what they read.

The rules are data, not code: the Airflow Variable ``benefits_hub.notifications`` holds a JSON list
of rules (docs/notifications.md), e.g.::

    [{"integrations": ["plansource_*"], "statuses": ["Completed with Errors", "Failed"],
      "email": ["payroll-ops@example.com"], "smtp_conn_id": "smtp_default",
      "webhook_conn_id": "hub_webhook"}]

A rule names integrations (DAG ids or shell-style patterns, ``*`` for all), statuses in the seeds'
vocabulary (plus ``Deadline missed``, raised by :mod:`benefits_hub.deadlines`), and where to send:
e-mail through Airflow's SMTP provider, and/or a Slack-compatible webhook (``{"text": ...}`` POSTed
through the HTTP provider). A bad rule is reported and skipped; the others still apply.

Everything above the "Sending" line is pure (no Airflow import) and unit-tested on its own. Sending
never raises: a notification that cannot be sent is a warning in the task log, never a change to the
run's status, and every send is bounded by a short timeout.
"""

from __future__ import annotations

import fnmatch
import html
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from benefits_hub.models import RunStatus
from benefits_hub.pii import mask_field, redact
from benefits_hub.ui import urls

RULES_VARIABLE = "benefits_hub.notifications"
DEADLINE_MISSED = "Deadline missed"
# In-Progress is never a run's final status: nothing to notify.
NOTIFIABLE_STATUSES: tuple[str, ...] = (
    *(str(s) for s in RunStatus if s is not RunStatus.IN_PROGRESS),
    DEADLINE_MISSED,
)
# What a rule listens to when it names no statuses: the ones somebody must act on.
DEFAULT_STATUSES: tuple[str, ...] = (
    str(RunStatus.COMPLETED_WITH_ERRORS),
    str(RunStatus.FAILED),
    DEADLINE_MISSED,
)
# Where Airflow's UI usually is when ``[api] base_url`` is not set (the api-server's default port).
DEFAULT_BASE_URL = "http://localhost:8080"
# Seconds any one send may take (connect, then each read): a dead mail server or webhook must not
# hold the summary task (and so the run) for long.
SEND_TIMEOUT_SECONDS = 10
MAX_LISTED = 5  # warnings / failed plans listed in a message; the Run Summary has them all

_EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
# Bank account numbers are 4-17 digits and pii.redact only knows 9-digit (SSN-shaped) runs: in a
# message, any remaining run of 8+ digits goes too (no count a person needs is that long).
_LONG_NUMBER = re.compile(r"(?<!\d)\d{8,}(?!\d)")

log = logging.getLogger(__name__)


def free_text(text: object, limit: int = 300) -> str:
    """A vendor's or a person's free text as it may appear in a message: no SSN, date or long number."""
    return _LONG_NUMBER.sub("[number removed]", redact(str(text), limit=limit))


class NotificationRule(BaseModel):
    """One rule of ``benefits_hub.notifications``: which runs, which statuses, where to send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = ""
    integrations: list[str] = Field(default_factory=lambda: ["*"], min_length=1)
    statuses: list[str] = Field(default_factory=lambda: list(DEFAULT_STATUSES), min_length=1)
    email: list[str] = Field(default_factory=list)
    smtp_conn_id: str = "smtp_default"
    from_email: str | None = None  # else the SMTP connection's ``from_email`` extra
    webhook_conn_id: str | None = None
    webhook_endpoint: str = ""  # appended to the connection's URL; usually the URL is all in the host

    @field_validator("integrations")
    @classmethod
    def _integrations(cls, value: list[str]) -> list[str]:
        cleaned = [v.strip() for v in value]
        if any(not v for v in cleaned):
            raise ValueError("an integration is empty; use DAG ids, patterns such as 'ijoin_*', or '*'")
        return cleaned

    @field_validator("statuses")
    @classmethod
    def _statuses(cls, value: list[str]) -> list[str]:
        by_lower = {s.lower(): s for s in NOTIFIABLE_STATUSES}
        unknown = [v for v in value if v.strip().lower() not in by_lower]
        if unknown:
            raise ValueError(
                f"unknown status {', '.join(map(repr, unknown))}; "
                f"use one of: {', '.join(NOTIFIABLE_STATUSES)}"
            )
        return [by_lower[v.strip().lower()] for v in value]

    @field_validator("email")
    @classmethod
    def _email(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _EMAIL.match(v.strip())]
        if bad:
            raise ValueError(f"not an e-mail address: {', '.join(map(repr, bad))}")
        return [v.strip() for v in value]

    @model_validator(mode="after")
    def _somewhere_to_send(self) -> NotificationRule:
        if not self.email and not self.webhook_conn_id:
            raise ValueError("the rule sends nowhere: give 'email' addresses and/or a 'webhook_conn_id'")
        return self

    def matches(self, integration_ids: Iterable[str], status: str) -> bool:
        """True when the rule lists ``status`` and one of ``integration_ids`` matches its integrations."""
        if status not in self.statuses:
            return False
        ids = list(integration_ids)
        return any(fnmatch.fnmatchcase(i, pattern) for pattern in self.integrations for i in ids)


def parse_rules(raw: str | None) -> tuple[list[NotificationRule], list[str]]:
    """The rules in the Variable's JSON text, and a plain-language problem for each one left out.

    Never raises: a typo in one rule must not silence the others, nor fail a run.
    """
    if raw is None or not str(raw).strip():
        return [], []
    try:
        loaded = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [], [
            f"Variable {RULES_VARIABLE} is not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno}): "
            "no notification rule applies until it is fixed."
        ]
    if isinstance(loaded, dict):
        loaded = [loaded]  # one rule on its own is fine too
    if not isinstance(loaded, list):
        return [], [
            f"Variable {RULES_VARIABLE} must be a JSON list of rules, not {type(loaded).__name__}: "
            "no notification rule applies until it is fixed."
        ]
    rules: list[NotificationRule] = []
    problems: list[str] = []
    for number, item in enumerate(loaded, start=1):
        label = f"rule {number}"
        if isinstance(item, dict) and isinstance(item.get("name"), str) and item["name"]:
            label += f" ({item['name']!r})"
        if not isinstance(item, dict):
            problems.append(f"Variable {RULES_VARIABLE}, {label}: must be a JSON object; rule ignored.")
            continue
        try:
            rules.append(NotificationRule.model_validate(item))
        except ValidationError as exc:
            problems.append(f"Variable {RULES_VARIABLE}, {label}: {_explain(exc)}; rule ignored.")
    return rules, problems


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        where = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "not a rule field (check the spelling)"
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


@dataclass(frozen=True)
class Deliveries:
    """Where one notification goes: e-mail recipients per (SMTP connection, sender), webhooks."""

    email: dict[tuple[str, str | None], tuple[str, ...]] = field(default_factory=dict)
    webhooks: tuple[tuple[str, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.email or self.webhooks)


def deliveries_for(
    rules: Sequence[NotificationRule], integration_ids: Iterable[str], status: str
) -> Deliveries:
    """Everyone the matching rules name, each once (two rules naming one address send one e-mail)."""
    ids = list(integration_ids)
    email: dict[tuple[str, str | None], list[str]] = {}
    webhooks: list[tuple[str, str]] = []
    for rule in rules:
        if not rule.matches(ids, status):
            continue
        recipients = email.setdefault((rule.smtp_conn_id, rule.from_email), []) if rule.email else []
        recipients.extend(a for a in rule.email if a not in recipients)
        hook = (rule.webhook_conn_id, rule.webhook_endpoint) if rule.webhook_conn_id else None
        if hook and hook not in webhooks:
            webhooks.append(hook)
    return Deliveries({k: tuple(v) for k, v in email.items() if v}, tuple(webhooks))


@dataclass(frozen=True)
class Message:
    """A notification: the same words as an e-mail (subject, HTML) and as a webhook's ``text``."""

    subject: str
    lines: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (label, url)

    @property
    def text(self) -> str:
        body = "\n".join(self.lines)
        links = "\n".join(f"{label}: {url}" for label, url in self.links)
        return f"{self.subject}\n\n{body}\n{links}".rstrip()

    @property
    def html(self) -> str:
        body = "".join(f"<p>{html.escape(line)}</p>" for line in self.lines if line)
        links = "".join(
            f'<p>{html.escape(label)}: <a href="{html.escape(url, quote=True)}">{html.escape(url)}</a></p>'
            for label, url in self.links
        )
        return f"<html><body>{body}{links}</body></html>"

    def webhook_payload(self) -> dict[str, str]:
        return {"text": self.text}


def run_links(dag_id: str, run_id: str, base_url: str | None) -> tuple[tuple[str, str], ...]:
    """The run in Airflow's UI and in the Activity Monitor (both under the api-server's base URL)."""
    base = base_url or DEFAULT_BASE_URL
    airflow_run = f"/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return (
        ("Airflow run", urls.absolute_url(base, airflow_run)),
        ("Activity Monitor", urls.absolute_url(base, urls.run_detail_path(dag_id, run_id))),
    )


def _count(summary: Mapping[str, Any], key: str) -> int:
    value = summary.get(key)
    return int(value) if isinstance(value, int | float) else 0


def run_message(
    summary: Mapping[str, Any], *, dag_id: str, integration_id: str, base_url: str | None
) -> Message:
    """The message for a finished run, from its Run Summary (the ``summary`` task's XCom).

    ``dag_id`` is the DAG the run belongs to; ``integration_id`` the integration (they differ for a
    member of an integration set). Free text (failure reason, warnings, plan messages) is redacted.
    """
    status = str(summary.get("status") or "")
    name = str(summary.get("integration_name") or integration_id)
    run_id = str(summary.get("integration_reference_id") or "")
    run_name = mask_field("integration_run_name", summary.get("integration_run_name") or run_id)
    where = f" (in integration set {dag_id})" if dag_id != integration_id else ""
    lines = [
        f"{name}{where} ended {status}.",
        "",
        f"Integration: {name} ({integration_id})",
        f"Run name: {run_name}",
        f"Reference id: {run_id}",
        f"Status: {status}",
    ]
    reason = summary.get("failure_reason")
    errors = _count(summary, "errors")
    if reason:
        lines.append(f"What failed: {free_text(reason)}")
    elif errors:
        lines.append(f"What failed: {errors} record(s) with errors; see the error file.")
    lines.append(
        "Records: "
        f"{_count(summary, 'records_processed')} processed, {_count(summary, 'records_created')} created, "
        f"{_count(summary, 'records_updated')} updated, {_count(summary, 'records_skipped')} skipped, "
        f"{errors} with errors"
    )
    if _count(summary, "employees_processed"):
        lines.append(f"Employees processed: {_count(summary, 'employees_processed')}")
    error_files = [str(f) for f in summary.get("error_files") or []]
    if error_files:
        lines.append(f"Error file: {error_files[0].rsplit('/', 1)[-1]} ({error_files[0]})")
    outcomes = [o for o in summary.get("outcomes") or [] if isinstance(o, Mapping)]
    not_successful = [o for o in outcomes if o.get("status") not in (None, str(RunStatus.SUCCESSFUL))]
    for outcome in not_successful[:MAX_LISTED]:
        messages = "; ".join(free_text(m, limit=150) for m in outcome.get("messages") or [])
        lines.append(
            f"Plan {outcome.get('plan_id')}: {outcome.get('status')}" + (f": {messages}" if messages else "")
        )
    if len(not_successful) > MAX_LISTED:
        lines.append(f"... and {len(not_successful) - MAX_LISTED} more plan(s); see the Run Summary.")
    warnings = [free_text(w, limit=200) for w in summary.get("warnings") or []]
    for warning in warnings[:MAX_LISTED]:
        lines.append(f"Warning: {warning}")
    if len(warnings) > MAX_LISTED:
        lines.append(f"... and {len(warnings) - MAX_LISTED} more warning(s); see the Run Summary.")
    lines.append("")
    return Message(
        subject=f"[Benefits hub] {status}: {_headline(name, where, run_name)}",
        lines=tuple(lines),
        links=run_links(dag_id, run_id, base_url),
    )


def _headline(name: str, where: str, run_name: str) -> str:
    # The default run name is the integration's name and a time stamp: say the name once.
    if run_name.startswith(name):
        return f"{run_name}{where}"
    return f"{name}{where} - {run_name}"


def _when(value: object) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    text = str(value or "")
    try:
        return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return text or "-"


def deadline_message(
    dag_run: Mapping[str, Any], *, deadline_time: object, expected: str, base_url: str | None
) -> Message:
    """The message for a run that has not finished in its expected time (Airflow's deadline alert).

    ``dag_run`` is the run as Airflow's deadline callback context gives it (the REST API's DAG run).
    """
    dag_id = str(dag_run.get("dag_id") or "")
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "")
    conf = dag_run.get("conf") if isinstance(dag_run.get("conf"), Mapping) else {}
    run_name = mask_field("integration_run_name", (conf or {}).get("integration_run_name") or run_id)
    state = str(dag_run.get("state") or "unknown")
    within = f" within {expected}" if expected else " in its expected time"
    lines = (
        f"{dag_id} has not finished{within} of being queued.",
        "",
        f"Integration: {dag_id}",
        f"Run name: {run_name}",
        f"Reference id: {run_id}",
        f"Status: {DEADLINE_MISSED} (the run is {state} in Airflow)",
        f"Queued at: {_when(dag_run.get('queued_at'))}",
        f"Deadline: {_when(deadline_time)}",
        "What to check: the run's task that is still running or waiting (a slow vendor, retries, a "
        "queue of runs). The run's own notification follows when it ends.",
        "",
    )
    return Message(
        subject=f"[Benefits hub] {DEADLINE_MISSED}: {dag_id} not finished{within}",
        lines=lines,
        links=run_links(dag_id, run_id, base_url),
    )


def finished_before(dag_run: Mapping[str, Any], deadline_time: object) -> bool:
    """True when the run had already ended when its deadline came.

    Airflow drops a deadline only when the run *succeeds*; a run that failed in time (Completed with
    Errors, say) keeps it, and the alert would fire for a run that was not late at all. Its own
    notification has gone out already, so the deadline callback sends nothing for it.
    """
    if str(dag_run.get("state")) not in ("success", "failed"):
        return False
    end, deadline = _as_datetime(dag_run.get("end_date")), _as_datetime(deadline_time)
    return end is not None and (deadline is None or end <= deadline)


def _as_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


# ---- Sending (Airflow hooks, imported when a notification is sent) --------------------------------


def load_rules(logger: Any = log) -> list[NotificationRule]:
    """The rules in the Airflow Variable; each problem is logged as an error, naming the rule."""
    from airflow.sdk import Variable

    rules, problems = parse_rules(Variable.get(RULES_VARIABLE, default=None))
    for problem in problems:
        logger.error("Notifications: %s", problem)
    return rules


def base_url() -> str | None:
    """Airflow's ``[api] base_url``: where people open the UI (links in messages)."""
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback=None) or None


def send(message: Message, deliveries: Deliveries, logger: Any = log) -> list[str]:
    """Send ``message`` everywhere ``deliveries`` says; what went out, for the log. Never raises."""
    sent: list[str] = []
    for (smtp_conn_id, from_email), recipients in deliveries.email.items():
        try:
            _send_email(message, recipients, smtp_conn_id, from_email)
        except Exception as exc:
            logger.warning(
                "Notifications: could not e-mail %d recipient(s) through connection %r: %s: %s",
                len(recipients), smtp_conn_id, type(exc).__name__, free_text(exc),
            )  # fmt: skip
        else:
            sent.append(f"e-mail to {len(recipients)} recipient(s) via {smtp_conn_id}")
    for webhook_conn_id, endpoint in deliveries.webhooks:
        try:
            _post_webhook(message, webhook_conn_id, endpoint)
        except Exception as exc:
            logger.warning(
                "Notifications: could not post to webhook connection %r: %s: %s",
                webhook_conn_id, type(exc).__name__, free_text(exc),
            )  # fmt: skip
        else:
            sent.append(f"webhook {webhook_conn_id}")
    return sent


def _send_email(
    message: Message, recipients: Sequence[str], smtp_conn_id: str, from_email: str | None
) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    class BoundedSmtpHook(SmtpHook):
        # The connection may ask for 30 s and 5 retries (the provider's defaults): cap both.
        @property
        def timeout(self) -> int:
            return min(super().timeout, SEND_TIMEOUT_SECONDS)

        @property
        def smtp_retry_limit(self) -> int:
            return min(super().smtp_retry_limit, 1)

    with BoundedSmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(
            to=list(recipients), subject=message.subject, html_content=message.html, from_email=from_email
        )


def _post_webhook(message: Message, webhook_conn_id: str, endpoint: str) -> None:
    from airflow.providers.http.hooks.http import HttpHook

    HttpHook(method="POST", http_conn_id=webhook_conn_id).run(
        endpoint=endpoint or None,
        json=message.webhook_payload(),
        headers={"Content-Type": "application/json"},
        extra_options={"timeout": SEND_TIMEOUT_SECONDS},
    )


def notify_run_summary(
    summary: Mapping[str, Any], *, dag_id: str, integration_id: str, logger: Any = log
) -> list[str]:
    """Tell whoever the rules name about a finished run (called by the ``summary`` task).

    A member of an integration set is matched both as its own integration and as the set, so a rule
    for the export hears about it whether it ran alone or inside the set.
    """
    try:
        status = str(summary.get("status") or "")
        deliveries = deliveries_for(load_rules(logger), {dag_id, integration_id}, status)
        if not deliveries:
            logger.info("Notifications: no rule asks to be told about %s runs of %s.", status, integration_id)
            return []
        message = run_message(summary, dag_id=dag_id, integration_id=integration_id, base_url=base_url())
        sent = send(message, deliveries, logger)
        if sent:
            logger.info("Notifications sent: %s", "; ".join(sent))
        return sent
    except Exception as exc:  # a notification never changes the run's outcome
        logger.warning("Notifications: not sent: %s: %s", type(exc).__name__, free_text(exc))
        return []
