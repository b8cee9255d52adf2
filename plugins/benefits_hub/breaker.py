"""The mass-change circuit breaker: a run about to send an unusually large change waits for a person.

One bad source load (a truncated HCM table, a mass status change, a wrong premium table) would
otherwise be delivered faithfully: thousands of people terminated in PlanSource, everyone's payroll
deductions rewritten. Before ``deliver``, the ``hold`` task (:mod:`benefits_hub.operators.hold`)
measures the run's change set against its thresholds; when one trips, delivery waits for approval
through Airflow's human-in-the-loop (Required Actions), as draft reviews do.

Everything here is a pure function of counts: each integration measures its own change set
(``Integration.change_set``) and this module decides and words it.

| param | default | measured |
|---|---|---|
| ``hold_terminations_pct`` | 2 | terminations, as a share of the active employees before the run |
| ``hold_changing_pct`` | 20 | employees PlanSource already holds that would change, of all employees |
| ``hold_row_drop_pct`` | 10 | how far a full run's employee count fell since the last successful one |
| ``hold_amount_changes_pct`` | 20 | employees whose deduction amounts would change, of all with deductions |

The iJoin Participant Sync measures against the participants iJoin holds (``PARTICIPANT_THRESHOLDS``):
terminations of its active ones, participants changing, the recordkeeper's count against each plan's
last delivered sync (``hold_row_drop_pct``), and ``hold_rate_changes_pct`` (20): new contribution rates.

A threshold of 100 never holds (no share exceeds all of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

# Records the approver sees in a held run's request (ids, kinds of change and field names only).
SAMPLE_SIZE = 10


# Each threshold's documented default, whoever's changes it measures (one place: the tables below word them).
DEFAULT_PCT: dict[str, float] = {
    "hold_terminations_pct": 2.0,
    "hold_changing_pct": 20.0,
    "hold_row_drop_pct": 10.0,
    "hold_amount_changes_pct": 20.0,
    "hold_rate_changes_pct": 20.0,
}


@dataclass(frozen=True)
class Threshold:
    param: str
    title: str  # the trigger form's label
    description: str
    said: str  # "{part} ... {whole}" words for a measured share

    @property
    def default(self) -> float:
        return DEFAULT_PCT[self.param]


THRESHOLDS: dict[str, Threshold] = {
    t.param: t
    for t in (
        Threshold(
            "hold_terminations_pct", "Hold if Terminations Exceed (%)",
            "Hold delivery for approval when more than this share of the active employees would be "
            "terminated in PlanSource by this run. 100: never hold.",
            "{part} of {whole} active employees would be terminated",
        ),
        Threshold(
            "hold_changing_pct", "Hold if Changing Employees Exceed (%)",
            "Hold delivery for approval when more than this share of all employees would change in "
            "PlanSource (new hires not counted). 100: never hold.",
            "{part} of {whole} employees would change in PlanSource",
        ),
        Threshold(
            "hold_row_drop_pct", "Hold if a Full Run Reads Fewer Employees (%)",
            "On a full run (Delta off): hold delivery for approval when the HCM gave this much fewer "
            "employees than at the last successful full run. 100: never hold.",
            "the HCM gave {now} employees, {part} fewer than the {whole} of the last successful full run",
        ),
        Threshold(
            "hold_amount_changes_pct", "Hold if Deduction Amounts Change for More Than (%)",
            "Hold delivery for approval when this run would change the deduction amounts of more than "
            "this share of the employees who have deductions in the HCM. 100: never hold.",
            "{part} of {whole} employees with deductions would get new amounts",
        ),
    )
}  # fmt: skip
# The iJoin Participant Sync's thresholds: measured against the participants iJoin holds.
PARTICIPANT_THRESHOLDS: dict[str, Threshold] = {
    t.param: t
    for t in (
        Threshold(
            "hold_terminations_pct", "Hold if Terminations Exceed (%)",
            "Hold delivery for approval when more than this share of the participants iJoin holds as "
            "active would be terminated by this run. 100: never hold.",
            "{part} of {whole} active participants in iJoin would be terminated",
        ),
        Threshold(
            "hold_changing_pct", "Hold if Changing Participants Exceed (%)",
            "Hold delivery for approval when more than this share of the participants iJoin holds would "
            "change (census, pay, rates or allocations; balances and new participants not counted). "
            "100: never hold.",
            "{part} of {whole} participants in iJoin would change",
        ),
        Threshold(
            "hold_row_drop_pct", "Hold if the Recordkeeper Gives Fewer Participants (%)",
            "Hold delivery for approval when the recordkeeper gives this much fewer participants for the "
            "plans than their last delivered sync read (a truncated load). 100: never hold.",
            "the recordkeeper gave {now} participants, {part} fewer than the plans' last syncs read "
            "({whole})",
        ),
        Threshold(
            "hold_rate_changes_pct", "Hold if Contribution Rates Change for More Than (%)",
            "Hold delivery for approval when this run would change the contribution rates of more than "
            "this share of the participants iJoin holds. 100: never hold.",
            "{part} of {whole} participants in iJoin would get new contribution rates",
        ),
    )
}  # fmt: skip
# Each kind of change set's thresholds, by who it changes (ChangeSet.subject).
THRESHOLDS_BY_SUBJECT = {"employees": THRESHOLDS, "participants": PARTICIPANT_THRESHOLDS}


class Share(BaseModel):
    """One measured share: ``part`` of ``whole`` (``now``: the count a row drop was measured at)."""

    part: int
    whole: int
    now: int | None = None

    @property
    def pct(self) -> float:
        return 100.0 * self.part / self.whole if self.whole > 0 else 0.0


class ChangeSet(BaseModel):
    """What a run is about to deliver, measured before it does: counts by kind of change (in a
    clerk's words), the shares the thresholds apply to, and a few records to look at."""

    counts: dict[str, int] = Field(default_factory=dict)
    shares: dict[str, Share] = Field(default_factory=dict)  # by threshold param
    # A few records (employee number, change, fields): never values, so nothing personal is kept.
    sample: list[dict[str, str]] = Field(default_factory=list)
    sample_columns: tuple[str, ...] = ("Employee", "Change", "Fields")
    subject: str = "employees"  # whose changes: the words of THRESHOLDS_BY_SUBJECT

    @classmethod
    def summed(cls, parts: list[ChangeSet], **fields: Any) -> ChangeSet:
        """One change set of several (the plans of a run that fanned out): counts and shares added up,
        samples joined up to ``SAMPLE_SIZE``."""
        counts: dict[str, int] = {}
        shares: dict[str, Share] = {}
        sample: list[dict[str, str]] = []
        for part in parts:
            for kind, n in part.counts.items():
                counts[kind] = counts.get(kind, 0) + n
            for param, share in part.shares.items():
                had = shares.get(param)
                shares[param] = share if had is None else had.model_copy(update={
                    "part": had.part + share.part, "whole": had.whole + share.whole,
                    "now": None if had.now is None or share.now is None else had.now + share.now,
                })  # fmt: skip
            sample.extend(part.sample[: SAMPLE_SIZE - len(sample)])
        return cls(counts=counts, shares=shares, sample=sample, **fields)


class Trip(BaseModel):
    """A threshold the change set went over, and how it says so."""

    param: str
    title: str
    limit: float
    pct: float
    reason: str


def limit_of(param: str, params: dict[str, Any]) -> float:
    """The run's threshold for ``param``: the trigger's value, else the documented default."""
    value = params.get(param)
    if value is None or value == "":
        return DEFAULT_PCT[param]
    return float(value)


def _pct(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def trips(change_set: ChangeSet, params: dict[str, Any]) -> list[Trip]:
    """Every threshold the change set goes over (strictly: exactly at the limit does not hold)."""
    found: list[Trip] = []
    for param, share in change_set.shares.items():
        threshold = THRESHOLDS_BY_SUBJECT[change_set.subject][param]
        limit = limit_of(param, params)
        if share.whole <= 0 or share.pct <= limit:
            continue
        said = threshold.said.format(part=share.part, whole=share.whole, now=share.now)
        found.append(
            Trip(
                param=param,
                title=threshold.title,
                limit=limit,
                pct=share.pct,
                reason=f"{said} ({_pct(share.pct)}%, above the {_pct(limit)}% limit)",
            )
        )
    return found


def held_reason(tripped: list[Trip]) -> str:
    """One sentence naming every threshold that tripped."""
    return "Delivery held for approval: " + "; ".join(t.reason for t in tripped) + "."


def _cell(value: Any) -> str:
    # Markdown table cells: a pipe or a line break would break the table (values are ids and labels).
    return str(value).replace("|", "/").replace("\n", " ")


def hold_body(integration_name: str, run_name: str, change_set: ChangeSet, tripped: list[Trip]) -> str:
    """What the approver reads in Required Actions (Markdown): why it is held, the counts by kind of
    change, a sample of records, and what each answer does."""
    lines = [
        f"**{_cell(integration_name)}**, run *{_cell(run_name)}*, has worked out its changes but sent "
        "nothing yet: the change is larger than this integration's thresholds allow without a look.",
        "",
        "| Threshold | Measured | Limit |",
        "|---|---|---|",
        *(f"| {t.title} | {_cell(t.reason.split(' (')[0])}: **{_pct(t.pct)}%** | {_pct(t.limit)}% |"
          for t in tripped),
        "",
        "| Change | Records |",
        "|---|---|",
        *(f"| {_cell(kind)} | {count} |" for kind, count in change_set.counts.items()),
    ]  # fmt: skip
    if change_set.sample:
        lines += [
            "",
            f"The first {len(change_set.sample)} records (personal values are not shown here):",
            "",
            "| " + " | ".join(change_set.sample_columns) + " |",
            "|" + "---|" * len(change_set.sample_columns),
            *("| " + " | ".join(_cell(r.get(c, "")) for c in change_set.sample_columns) + " |"
              for r in change_set.sample),
        ]  # fmt: skip
    lines += [
        "",
        "**Approve** sends these changes now. **Reject** sends nothing: the run ends Failed with your "
        "reason and the next run covers the same changes again, so correct the source first. "
        "A Dry Run of the integration lists every record before you decide.",
    ]
    return "\n".join(lines)
