"""Repair of reconciliation discrepancies: the HCM Demographic Export, for exactly the employees a
person selected on a reconciliation's discrepancy page.

It runs in a DAG of its own (``plansource_demographic_repair``): a repair is started on a person's
behalf, so it must never wait behind the export's schedule being paused, and turning that schedule on
is a decision nobody made by clicking Repair. The stages, rules and delivery are the export's.
"""

from __future__ import annotations

from benefits_hub.demographics.export import DemographicExport
from benefits_hub.integration import StageRefused
from benefits_hub.models import StageResult
from benefits_hub.params import PlanSourceRunParams

REPAIR_DAG_ID = "plansource_demographic_repair"


class DemographicRepair(DemographicExport):
    integration_name = "PlanSource Demographic Repair"

    @property
    def params(self) -> PlanSourceRunParams:
        # Everything the named employees are, whatever changed when: never a delta.
        return PlanSourceRunParams.parse({**self.run.params, "delta": False})

    def validate(self) -> StageResult:
        if not self.params.include_employees:
            raise StageRefused(
                "Param 'include_employees': a repair names the employees to send. Start it from a "
                "reconciliation's discrepancy page (Repair), which fills them in."
            )
        return super().validate()
