"""Recordkeeper → iJoin Participant Sync: census, balances, investments, allocations, contribution rates.

validate  - which plans (``plan_ids``); one item per plan.
extract   - per plan: iJoin must have the plan ("run Plan Sync first" otherwise); the recordkeeper's
            participants with their balances, allocations, contribution rates and last-3-months payroll,
            streamed in chunks to the staging area (SSNs dropped once payroll is matched).
            With them, the plan's participants as iJoin holds them (what the circuit breaker measures).
transform - per participant: pay frequency (plan code; 'V' = most frequent of the last 3 months),
            salary fallback, allocations checked (must add up to 100%), a synchronization status; and
            what it would change in iJoin (added, changed, terminated, new contribution rates).
hold      - the circuit breaker (benefits_hub.operators.hold): the whole run's changes against its
            thresholds; over one, delivery waits for a person's approval.
deliver   - upserted into iJoin 500 at a time, on (plan, participant); the plan's outcome goes to
            iJoin's activity log.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, ClassVar

from benefits_hub import codec
from benefits_hub.breaker import SAMPLE_SIZE, ChangeSet, Share
from benefits_hub.ijoin.plan_sync import FAILED, SUCCESSFUL, WITH_WARNINGS, IJoinSync
from benefits_hub.ijoin.rules import (
    PARTICIPANT_FIELDS,
    allocation_problem,
    annual_salary,
    months_before,
    participant_changes,
    pay_frequency,
)
from benefits_hub.integration import record_error
from benefits_hub.journal import DeliveryJournal
from benefits_hub.lookup import OutOfOrder, full_outer_join
from benefits_hub.models import ErrorRow, StagedFile, StageResult
from benefits_hub.pii import mask_field, redact
from benefits_hub.readahead import read_ahead
from benefits_hub.staging import SafeCsvWriter

CHUNK = 500
SYNCHRONIZED = "Synchronized"
SYNCHRONIZED_WITH_WARNINGS = "Synchronized with warnings"
# Participants named one per line in the Run Summary's warnings, per plan; the rest are counted there
# and each is listed on the plan's page (a summary in XCom must stay small at millions of participants).
WARNING_LINES = 50
CENSUS_FIELDS = ("first_name", "last_name", "birth_date", "hire_date", "termination_date", "status", "email")
# What the circuit breaker compares of iJoin's record (participant_changes), staged per plan.
COMPARED = ("participant_id", *PARTICIPANT_FIELDS, "contribution_rates", "allocations")
TERMINATED = "T"
# The per-DAG state of how many participants each plan's last delivered sync read (the breaker's row drop).
READ_KEY = "participants_read"
# The circuit breaker's counts, by kind of change, in a plan administrator's words.
CHANGE_KIND_WORDS = {
    "add": "Participants new to iJoin",
    "change": "Participants iJoin holds that would change",
    "terminate": "Terminations (active in iJoin, terminated in the recordkeeper)",
    "rates": "New contribution rates",
    "missing": "In iJoin, missing from the recordkeeper's read",
}


def _text(value: Any) -> Any:
    return None if value is None else str(value)


class _Related:
    """Rows of one scan ordered by participant id, taken a participant at a time (a merge join with the
    participants' own scan, which has the same order). A scan out of order raises :class:`OutOfOrder`:
    its rows would be given to the wrong participants, or to none."""

    def __init__(self, rows: Iterator[dict[str, Any]]) -> None:
        self._rows = iter(rows)
        self._head = next(self._rows, None)

    def take(self, participant_id: str) -> list[dict[str, Any]]:
        """The rows of ``participant_id``; rows of an id before it (no such participant) are passed over."""
        taken = []
        head, rows = self._head, self._rows
        while head is not None:
            key = head["participant_id"]
            if key > participant_id:
                break
            if key == participant_id:
                taken.append(head)
            head = next(rows, None)
            if head is not None and head["participant_id"] < key:
                raise OutOfOrder(f"key order broken after {len(key)}-character key")
        self._head = head
        return taken


def source_records(rk: Any, conn: Any, plan_id: str, since: str) -> Iterator[dict[str, Any]]:
    """The plan's participants as the sync stages them, in participant-id order: each with its balances,
    allocations, contribution rates and payroll of the last 3 months (one scan each, merged by id)."""
    scans = rk.participant_scans(conn, plan_id, since)
    related = {name: _Related(scans[name]) for name in ("balances", "allocations", "rates", "payroll")}
    for person in scans["participants"]:
        pid = person["participant_id"]
        rates = related["rates"].take(pid)
        yield {
            # Payroll is keyed by SSN in Relius; once matched, the SSN is not carried on.
            "participant": {k: v for k, v in person.items() if k != "ssn"},
            "balances": related["balances"].take(pid),
            "allocations": related["allocations"].take(pid),
            "rates": rates[0] if rates else None,
            "payroll": [
                [_text(row["pay_date"]), row["pay_frequency_code"]] for row in related["payroll"].take(pid)
            ],
        }


def participant_payload(
    record: dict[str, Any], plan_code: str | None, as_of: date
) -> tuple[dict[str, Any], str | None]:
    """(what the sync sends iJoin of one staged participant, the allocation problem or None): pay
    frequency, salary fallback, allocations only when they add up, and the sync status with its reasons."""
    person = record["participant"]
    messages: list[str] = []
    frequency, warning = pay_frequency(plan_code, record["payroll"], as_of)
    if warning:
        messages.append(warning)
    salary, salary_source = annual_salary(person)
    problem = allocation_problem(record["allocations"])
    allocations: list[dict[str, Any]] | None = [
        {"fund_id": a["fund_id"], "pct": _text(a["pct"])} for a in record["allocations"]
    ]
    if problem:
        # Never send iJoin allocations that do not add up, nor an empty list (that would clear what iJoin
        # holds): the participant syncs without the field.
        messages.append(
            problem + " Allocations were not sent (iJoin keeps the ones it has); correct them in the "
            "recordkeeper."
        )
        allocations = None
    rates = record["rates"] or {}
    payload = {
        "participant_id": person["participant_id"],
        **{field: _text(person.get(field)) for field in CENSUS_FIELDS},
        "pay_frequency": frequency,
        "annual_salary": str(salary),
        "salary_source": salary_source,
        "balances": [
            {
                "fund_id": b["fund_id"],
                "money_source": b["money_source"],
                "balance": _text(b["balance"]),
                "as_of": _text(b["as_of"]),
            }
            for b in record["balances"]
        ],
        **({"allocations": allocations} if allocations is not None else {}),
        "contribution_rates": {k: _text(rates.get(k)) for k in ("pretax_pct", "roth_pct", "aftertax_pct")},
        "sync_status": SYNCHRONIZED_WITH_WARNINGS if messages else SYNCHRONIZED,
        "sync_messages": messages,
    }
    return payload, problem


class ParticipantSync(IJoinSync):
    integration_name = "iJoin Participant Sync"
    activity_type = "Participant Sync"
    #: Reads iJoin's participants to measure what the run would change (its circuit breaker). A repair
    #: has no hold (a person chose exactly what it sends), so it reads nothing more.
    measures_changes: ClassVar[bool] = True

    @property
    def as_of(self) -> date:
        return self.run.run_start.astimezone(UTC).date()

    def extract(self) -> StageResult:
        ijoin_plan = self._ijoin().get_plan(self.plan_id)
        if ijoin_plan is None or not (ijoin_plan.get("active") or ijoin_plan.get("draft")):
            message = f"iJoin does not have plan {self.plan_id} yet: run Plan Sync first."
            return StageResult(
                stage="extract", details={"plan_id": self.plan_id, "status": FAILED, "messages": [message]}
            )
        rk = self._recordkeeper()
        plan = rk.plan(self.plan_id) or {}
        since = months_before(self.as_of, 3).isoformat()
        staging = self.run.staging
        assert staging is not None
        with (
            rk.connection() as conn,
            staging.records(f"plans/{self.plan_id}/participants.jsonl") as source,
        ):
            for record in source_records(rk, conn, self.plan_id, since):
                source.write(record)
        files = {"source": source.manifest}
        if self.measures_changes:
            with staging.records(f"plans/{self.plan_id}/ijoin_participants.jsonl") as held:
                for participant in self._ijoin().list_participants(self.plan_id, limit=sys.maxsize):
                    held.write({name: participant.get(name) for name in COMPARED})
            files["ijoin_held"] = held.manifest
        return StageResult(
            stage="extract",
            counters={"source_records": source.rows},
            files=files,
            details={
                "plan_id": self.plan_id,
                "status": "Ready",
                "pay_frequency_code": plan.get("pay_frequency_code"),
            },
        )

    def transform(self) -> StageResult:
        extract = self.run.result("extract")
        if extract.details["status"] == FAILED:
            # The plan is an error record of its own: one row in the error file, as the count says.
            with self.run.error_file(f"transform-{self.plan_id}") as errors:
                for message in extract.details["messages"]:
                    problem = ErrorRow(
                        record_key=self.plan_id, field="plan", rule="ijoin:plan_not_synced", reason=message
                    )
                    record_error(errors, problem, "transform")
            return StageResult(
                stage="transform",
                counters={"error_records": errors.records},
                files={"errors": errors.manifest},
                details=extract.details,
            )
        staging = self.run.staging
        assert staging is not None
        plan_code = extract.details.get("pay_frequency_code")
        counters = {"records_processed": 0, "employees_processed": 0, "participants_with_warnings": 0}
        warned: list[str] = []  # one line per participant synced with warnings, for the Run Summary
        changes = _ChangeTally(self.plan_id) if "ijoin_held" in extract.files else None
        ours = (
            (r["participant"]["participant_id"], r) for r in staging.read_records(extract.files["source"])
        )
        theirs = (
            ((p["participant_id"], p) for p in staging.read_records(extract.files["ijoin_held"]))
            if changes is not None
            else iter(())
        )
        with (
            self.run.error_file(f"transform-{self.plan_id}") as errors,
            staging.records(f"plans/{self.plan_id}/payload.jsonl") as payload,
        ):
            # Both in participant-id order: a merge, neither side held in memory.
            for _pid, record, held in full_outer_join(ours, theirs, ("recordkeeper", "iJoin")):
                if record is None:
                    assert changes is not None
                    changes.missing(held)
                    continue
                person = record["participant"]
                key = f"{self.plan_id}/{person['participant_id']}"
                participant, problem = participant_payload(record, plan_code, self.as_of)
                if problem:
                    record_error(
                        errors,
                        ErrorRow(
                            record_key=key, field="allocations", rule="allocations:sum_100", reason=problem
                        ),
                        "transform",
                    )
                payload.write(participant)
                if changes is not None:
                    changes.add(participant, held)
                messages = participant["sync_messages"]
                counters["records_processed"] += 1
                counters["employees_processed"] += 1
                counters["participants_with_warnings"] += bool(messages)
                if messages and len(warned) < WARNING_LINES:
                    warned.append(
                        f"Plan {self.plan_id}, participant {person['participant_id']}: {' '.join(messages)}"
                    )
        counters["error_records"] = errors.records
        more = counters["participants_with_warnings"] - len(warned)
        if more:
            warned.append(
                f"Plan {self.plan_id}: {more} more participant(s) synced with warnings; each is listed "
                "with its reason on the plan's page (Plan Summary)."
            )
        return StageResult(
            stage="transform",
            counters=counters,
            files={"payload": payload.manifest, "errors": errors.manifest},
            details={
                "plan_id": self.plan_id,
                "status": "Ready",
                **({"changes": changes.as_details()} if changes is not None else {}),
            },
            warnings=[redact(w) for w in warned],
        )

    def change_set(self) -> ChangeSet | None:
        """The whole run's changes to iJoin (every plan's), measured against what iJoin holds: active
        participants terminated, participants changing, new contribution rates, and each plan's count
        against its last delivered sync's (a truncated load)."""
        measured = [item for item in _items(self.run.result("transform")) if item.get("changes")]
        if not measured:
            return None
        last_read = self._last_read()
        return ChangeSet.summed(
            [_ChangeTally.change_set(item["changes"], last_read.get(item["plan_id"])) for item in measured],
            sample_columns=("Participant", "Change", "Fields"),
            subject="participants",
        )

    def deliver(self) -> StageResult:
        started = datetime.now(UTC).isoformat()
        transform = self.run.result("transform")
        staging = self.run.staging
        assert staging is not None
        # A batch (or activity entry) iJoin acknowledged in an earlier attempt of this run is not sent again.
        # A journal per plan: each plan's deliver lists only its own entries, not every plan's so far.
        journal = DeliveryJournal(staging, stage=f"deliver/{self.plan_id}")
        if transform.details["status"] == FAILED:
            if not self.is_dry_run:  # a dry run writes nothing to iJoin, its activity log included
                self._log_activity_once(journal, FAILED, started, transform.details["messages"], None)
            return StageResult(stage="deliver", details={**transform.details, "result": "not sent"})
        if self.is_dry_run:
            return self.preview(transform)
        ijoin = self._ijoin()
        counters = {"records_created": 0, "records_updated": 0, "records_skipped": 0}
        kind = f"participants-{self.plan_id}"
        with self.run.error_file(f"deliver-{self.plan_id}") as errors:
            # The next batch is read and encoded while iJoin works on this one (the two wait on each
            # other otherwise: a 2M-participant sync sends 4,000 batches).
            batches = journal.staged_batches(kind, transform.files["payload"], CHUNK)
            encoded = ((ijoin.participants_request(batch), key) for batch, key in batches)
            for request, key in read_ahead(encoded, name=f"payload-{self.plan_id}"):
                send = partial(ijoin.upsert_participants, self.plan_id, request)
                results = journal.once(kind, request, lambda send=send: _answers(send()), key=key)
                for result in results:
                    status = result.get("status")
                    if status == "created":
                        journal.tally(counters, "records_created")
                    elif status == "updated":
                        journal.tally(counters, "records_updated")
                    elif status == "unchanged":
                        counters["records_skipped"] += 1
                    else:
                        refused = ErrorRow(
                            record_key=f"{self.plan_id}/{result.get('participant_id')}",
                            field="participant",
                            rule="ijoin:refused",
                            reason=f"iJoin refused the participant: {redact(str(result.get('message')))}",
                        )
                        record_error(errors, refused, "deliver")
        warned = transform.counters.get("participants_with_warnings", 0)
        status = WITH_WARNINGS if warned or errors.records else SUCCESSFUL
        messages = [f"{warned} participant(s) synchronized with warnings"] if warned else []
        self._log_activity_once(journal, status, started, messages, transform.files["payload"].path)
        journal.log_replays(self.run.log, "iJoin delivery(ies)")
        return StageResult(
            stage="deliver",
            counters={**counters, "error_records": errors.records},
            files={"errors": errors.manifest, "output": transform.files["payload"]},
            details={"plan_id": self.plan_id, "status": status, "messages": messages, **counters},
        )

    def preview(self, transform: StageResult) -> StageResult:
        """Dry Run: each participant this plan would send iJoin, with the fields and their values (SSNs
        and birth dates masked); iJoin is not called, so whether it creates, updates or leaves each one
        alone is its own decision at the real run."""
        staging = self.run.staging
        assert staging is not None
        rows = 0
        with staging.text_file(f"plans/{self.plan_id}/preview.csv") as (stream, path):
            writer = SafeCsvWriter(stream)
            writer.writerow(["Plan", "Participant", "Fields and values to send"])
            for participant in staging.read_records(transform.files["payload"]):
                values = "; ".join(
                    f"{name}: {mask_field(name, _shown(value))}"
                    for name, value in sorted(participant.items())
                    if name != "participant_id" and value not in (None, "", [])
                )
                writer.writerow([self.plan_id, participant.get("participant_id"), values])
                rows += 1
        return StageResult(
            stage="deliver",
            counters={"would_send_participants": rows},
            files={"output": StagedFile(path=str(path), rows=rows, sha256="")},
            details={
                "plan_id": self.plan_id,
                "status": SUCCESSFUL,
                "result": "dry run: not sent",
                "messages": [f"Dry run: {rows} participant(s) would be sent to iJoin."],
            },
        )

    def _last_read(self) -> dict[str, int]:
        """How many participants each plan's last delivered sync read (``{}`` before any)."""
        try:
            known = codec.loads(self.run.state_get(READ_KEY) or "{}")
        except ValueError:
            return {}
        return known if isinstance(known, dict) else {}

    def after_summary(self, summary: Any) -> None:
        """Each plan delivered by this run: how many participants it read, what the next sync of that plan
        is held against (a dry run and a plan that failed leave the count where it was)."""
        if self.is_dry_run or "deliver" not in self.run.results or not self.measures_changes:
            return
        delivered = {
            d.get("plan_id") for d in _items(self.run.result("deliver")) if d.get("status") != FAILED
        }
        read = {
            item["plan_id"]: item["changes"]["read"]
            for item in _items(self.run.results.get("transform"))
            if item.get("changes") and item.get("plan_id") in delivered
        }
        if read:
            self.run.state_set(READ_KEY, codec.dumps({**self._last_read(), **read}).decode())

    def _log_activity_once(
        self, journal: DeliveryJournal, status: str, started: str, messages: list[str], payload: str | None
    ) -> None:
        """One activity entry per plan and run, however many times deliver runs (timestamps aside)."""

        def log() -> bool:
            self._log_activity(status, started, messages, payload)
            return True

        journal.once(
            f"activity-{self.plan_id}", {"status": status, "messages": messages, "payload_url": payload}, log
        )


class _ChangeTally:
    """What one plan's run would change in iJoin, participant by participant (counts, and the first few
    participants by id and field names: never values)."""

    def __init__(self, plan_id: str) -> None:
        self.plan_id = plan_id
        self.kinds: Counter[str] = Counter()
        self.held = self.held_active = self.read = 0
        self.sample: list[dict[str, str]] = []

    def missing(self, held: dict[str, Any]) -> None:
        """iJoin holds the participant; the recordkeeper's read did not have them."""
        self._held(held)
        self.kinds["missing"] += 1

    def add(self, payload: dict[str, Any], held: dict[str, Any] | None) -> None:
        self.read += 1
        if held is None:
            self.kinds["add"] += 1
            return
        self._held(held)
        changed = participant_changes(payload, held)
        if not changed:
            return
        self.kinds["change"] += 1
        change = "change"
        if payload.get("status") == TERMINATED and held.get("status") != TERMINATED:
            self.kinds["terminate"] += 1
            change = "terminate"
        if "contribution_rates" in changed:
            self.kinds["rates"] += 1
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append({"Participant": f"{self.plan_id}/{payload['participant_id']}",
                                "Change": CHANGE_KIND_WORDS[change].split(" (")[0],
                                "Fields": ", ".join(changed)})  # fmt: skip

    def _held(self, held: dict[str, Any]) -> None:
        self.held += 1
        self.held_active += held.get("status") != TERMINATED

    def as_details(self) -> dict[str, Any]:
        return {"kinds": dict(self.kinds), "held": self.held, "held_active": self.held_active,
                "read": self.read, "sample": self.sample}  # fmt: skip

    @staticmethod
    def change_set(details: dict[str, Any], last_read: int | None) -> ChangeSet:
        """One plan's measured changes as the circuit breaker's shares (in a plan administrator's words);
        ``last_read``: the participants its last delivered sync read (None: never synced)."""
        kinds, held, read = details["kinds"], details["held"], details["read"]
        shares = {
            "hold_terminations_pct": Share(part=kinds.get("terminate", 0), whole=details["held_active"]),
            "hold_changing_pct": Share(part=kinds.get("change", 0), whole=held),
            "hold_rate_changes_pct": Share(part=kinds.get("rates", 0), whole=held),
        }
        if last_read:
            shares["hold_row_drop_pct"] = Share(
                part=max(int(last_read) - read, 0), whole=int(last_read), now=read
            )
        return ChangeSet(
            counts={words: kinds[kind] for kind, words in CHANGE_KIND_WORDS.items() if kinds.get(kind)},
            shares=shares,
            sample=details["sample"],
            subject="participants",
        )  # fmt: skip


def _items(result: StageResult | None) -> list[dict[str, Any]]:
    """Each plan's details of a per-plan stage (a single plan's result comes uncombined)."""
    if result is None:
        return []
    return list(result.details.get("items") or [result.details])


def _answers(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """iJoin's per-participant answers, reduced to what the journal may keep (no record values)."""
    return [
        {
            "participant_id": r.get("participant_id"),
            "status": r.get("status"),
            "message": redact(str(r["message"])) if r.get("message") else None,
        }
        for r in results
    ]


def _shown(value: Any) -> Any:
    """A nested value (allocations, rates) as compact JSON text in a preview cell."""
    return codec.dumps(value).decode() if isinstance(value, dict | list) else value
