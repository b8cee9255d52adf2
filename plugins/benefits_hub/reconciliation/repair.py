"""Repair of reconciliation discrepancies: the integration that owns the direction, for exactly the
employees a person selected on a reconciliation's discrepancy page.

- demographics: the HCM Demographic Export (``plansource_demographic_repair``);
- payroll deductions: the Deductions Import with Delta off (``plansource_deductions_repair``), run as
  the import itself (its plan year, its staging), so it loads the plan year's coverages of those people;
- iJoin plans and participants: the iJoin Plan Sync (``ijoin_plan_repair``, which asks for a draft's
  review as the sync does) or Participant Sync (``ijoin_participant_repair``) for exactly those plans.

Each runs in a DAG of its own: a repair is started on a person's behalf, so it must never wait behind
the integration's schedule being paused, and turning that schedule on is a decision nobody made by
clicking Repair. The stages, rules and delivery are the integration's.
"""

from __future__ import annotations

from typing import Any

from benefits_hub.deductions.importer import DeductionsImport
from benefits_hub.demographics.export import DemographicExport
from benefits_hub.ijoin.participant_sync import ParticipantSync
from benefits_hub.ijoin.plan_sync import PlanSync
from benefits_hub.integration import StageRefused
from benefits_hub.models import StageResult
from benefits_hub.params import DeductionsRunParams, IJoinRunParams, PlanSourceRunParams
from benefits_hub.reconciliation.ijoin_rules import PARTICIPANT_SYNC_DAG_ID, PLAN_SYNC_DAG_ID, plan_of
from benefits_hub.reconciliation.rules import EXPORT_DAG_ID, IMPORT_DAG_ID

REPAIR_DAG_ID = "plansource_demographic_repair"
DEDUCTIONS_REPAIR_DAG_ID = "plansource_deductions_repair"
PLAN_REPAIR_DAG_ID = "ijoin_plan_repair"
PARTICIPANT_REPAIR_DAG_ID = "ijoin_participant_repair"
#: the repair DAG of each integration a discrepancy names as its repairer
REPAIR_DAGS = {
    EXPORT_DAG_ID: REPAIR_DAG_ID,
    IMPORT_DAG_ID: DEDUCTIONS_REPAIR_DAG_ID,
    PLAN_SYNC_DAG_ID: PLAN_REPAIR_DAG_ID,
    PARTICIPANT_SYNC_DAG_ID: PARTICIPANT_REPAIR_DAG_ID,
}
#: the param each repair DAG is narrowed by (the iJoin syncs work a plan at a time)
REPAIR_PARAM = {
    REPAIR_DAG_ID: "include_employees",
    DEDUCTIONS_REPAIR_DAG_ID: "include_employees",
    PLAN_REPAIR_DAG_ID: "plan_ids",
    PARTICIPANT_REPAIR_DAG_ID: "plan_ids",
}
NAMES_THE_EMPLOYEES = (
    "Param 'include_employees': a repair names the employees to send. Start it from a "
    "reconciliation's discrepancy page (Repair), which fills them in."
)
NAMES_THE_PLANS = (
    "Param 'plan_ids': a repair names the plans to sync. Start it from a reconciliation's discrepancy "
    "page (Repair), which fills them in."
)


def repair_subject(repair_dag_id: str, record_key: str) -> str:
    """Whom a repair run narrows to for one discrepancy: its employee (a deduction's key is "employee
    code start date"), or its plan (an iJoin key is "plan" or "plan/participant")."""
    if REPAIR_PARAM[repair_dag_id] == "plan_ids":
        return plan_of(record_key)
    return record_key.split(" ", 1)[0]


class DemographicRepair(DemographicExport):
    integration_name = "PlanSource Demographic Repair"

    @property
    def params(self) -> PlanSourceRunParams:
        # Everything the named employees are, whatever changed when: never a delta.
        return PlanSourceRunParams.parse({**self.run.params, "delta": False})

    def validate(self) -> StageResult:
        if not self.params.include_employees:
            raise StageRefused(NAMES_THE_EMPLOYEES)
        return super().validate()


class DeductionsRepair(DeductionsImport):
    integration_name = "PlanSource Deductions Repair"

    @property
    def params(self) -> DeductionsRunParams:
        # The plan year's coverages of the named employees as PlanSource holds them: Delta off, never an
        # initial import (the plan year is the one the import last loaded).
        forced = {"delta": False, "deduction_start_date": None, "plan_year_start_date": None}
        return DeductionsRunParams.parse({**self.run.params, **forced})

    def validate(self) -> StageResult:
        if not self.params.include_employees:
            raise StageRefused(NAMES_THE_EMPLOYEES)
        return super().validate()


class _NamesItsPlans:
    """An iJoin repair syncs the plans it names, never every plan (an empty Plan IDs would)."""

    run: Any

    def validate(self) -> StageResult:
        if not IJoinRunParams.parse(self.run.params).plan_ids:
            raise StageRefused(NAMES_THE_PLANS)
        return super().validate()  # type: ignore[misc]


class PlanRepair(_NamesItsPlans, PlanSync):
    integration_name = "iJoin Plan Repair"


class ParticipantRepair(_NamesItsPlans, ParticipantSync):
    integration_name = "iJoin Participant Repair"
    measures_changes = False  # no hold: the person who chose the repair saw what it changes
