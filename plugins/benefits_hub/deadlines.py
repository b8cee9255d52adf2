"""Deadlines: an integration run that has not finished in its expected time raises an alert.

A DAG file says ``deadline=finish_within(timedelta(minutes=45))``: Airflow's deadline alerts
(``DeadlineAlert``) then watch each run from the moment it was queued (so a run stuck waiting behind
another counts too). When the time passes and the run has not finished, the scheduler queues
:func:`deadline_missed`, which the triggerer runs: it tells whoever the notification rules
(:mod:`benefits_hub.notifications`) name for the status ``Deadline missed``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timedelta
from typing import Any

from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

from benefits_hub import notifications

log = logging.getLogger(__name__)


def describe(interval: timedelta) -> str:
    """``45 minutes``, ``2 hours``, ``1 hour 30 minutes``: the deadline in words, for messages and docs."""
    seconds = int(interval.total_seconds())
    parts = []
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount} {unit}{'s' if amount != 1 else ''}")
    return " ".join(parts) or "0 seconds"


def finish_within(interval: timedelta) -> DeadlineAlert:
    """The run must finish within ``interval`` of being queued, or ``Deadline missed`` is notified."""
    if interval <= timedelta(0):
        raise ValueError("a deadline must be a positive time")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(deadline_missed, kwargs={"expected": describe(interval)}),
        name=f"finish within {describe(interval)}",
    )


async def deadline_missed(context: dict[str, Any] | None = None, expected: str = "", **_: Any) -> str:
    """Airflow's deadline callback (run by the triggerer): notify ``Deadline missed`` for the run.

    Returns what was sent (Airflow keeps it as the callback's output). Never raises: a failing alert
    is logged, like any notification that cannot be sent.
    """
    # The hooks and the Variable lookup are blocking: keep them off the triggerer's event loop.
    return await asyncio.to_thread(notify_deadline_missed, context or {}, expected)


def notify_deadline_missed(context: dict[str, Any], expected: str) -> str:
    try:
        dag_run = context.get("dag_run") or {}
        deadline_time = (context.get("deadline") or {}).get("deadline_time")
        dag_id = str(dag_run.get("dag_id") or "")
        if notifications.finished_before(dag_run, deadline_time):
            log.info("Deadline of %s/%s: the run ended in time; no alert.", dag_id, dag_run.get("dag_run_id"))
            return "run ended in time: no alert"
        rules = notifications.load_rules(log)
        deliveries = notifications.deliveries_for(rules, [dag_id], notifications.DEADLINE_MISSED)
        if not deliveries:
            log.info("Deadline missed by %s; no rule asks to be told.", dag_id)
            return "no rule matched"
        message = notifications.deadline_message(
            dag_run, deadline_time=deadline_time, expected=expected, base_url=notifications.base_url()
        )
        sent = notifications.send(message, deliveries, log)
        log.info("Deadline missed by %s: %s", dag_id, "; ".join(sent) or "nothing could be sent")
        return "; ".join(sent) or "nothing could be sent"
    except Exception as exc:
        log.warning("Deadline alert not sent: %s: %s", type(exc).__name__, notifications.free_text(exc))
        return "not sent"


# ---- Airflow 3.3.2: DAG.test() of a DAG with a deadline ------------------------------------------
# DAG.test() (and so `airflow dags test` and the end-to-end tests) builds its scheduler DAG by an
# in-memory serialization round trip, which leaves the encoded alerts in ``dag.deadline`` where the
# scheduler has deadline_alert ids; when the run *succeeds*, DagRun.update_state() looks them up
# by id and crashes ("'dict' object has no attribute 'hex'"; seen on 3.3.2, where every end-to-end run
# of a DAG with a deadline hit it). Until Airflow fixes it, DAG.test() lets the lookup take an encoded
# alert as it is. Inert where ids are passed (the scheduler), and once Airflow passes none but ids.


def _encoded_alerts_accepted_by_lookup() -> None:
    from airflow.models.deadline_alert import DeadlineAlert as DeadlineAlertModel

    lookup = DeadlineAlertModel.get_by_id
    if getattr(lookup, "accepts_encoded_alerts", False):
        return

    @functools.wraps(lookup)
    def get_by_id(deadline_alert_id: Any, **kwargs: Any) -> Any:
        if isinstance(deadline_alert_id, dict):
            # A transient row (never added to a session): update_state() reads its reference only.
            return DeadlineAlertModel(
                name=deadline_alert_id.get("name"),
                reference=deadline_alert_id["reference"],
                interval=deadline_alert_id.get("interval"),
                callback_def=deadline_alert_id.get("callback"),
            )
        return lookup(deadline_alert_id, **kwargs)

    get_by_id.accepts_encoded_alerts = True  # type: ignore[attr-defined]
    DeadlineAlertModel.get_by_id = staticmethod(get_by_id)  # type: ignore[method-assign]


def _dag_test_accepts_deadlines() -> None:
    from airflow.sdk.definitions.dag import DAG

    run_test = DAG.test
    if getattr(run_test, "accepts_deadlines", False):
        return

    @functools.wraps(run_test)
    def test(self: DAG, *args: Any, **kwargs: Any) -> Any:
        _encoded_alerts_accepted_by_lookup()  # core imports only when a test run starts
        return run_test(self, *args, **kwargs)

    test.accepts_deadlines = True  # type: ignore[attr-defined]
    DAG.test = test  # type: ignore[method-assign]


_dag_test_accepts_deadlines()
