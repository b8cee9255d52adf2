"""The discrepancy page's rules and HTML, without Airflow."""

from __future__ import annotations

from benefits_hub.ui.activity import RunFacts, run_row
from benefits_hub.ui.detail import run_detail
from benefits_hub.ui.reconcile import matching, to_repair, values_of
from benefits_hub.ui.render import detail_page
from benefits_hub.ui.render_reconcile import discrepancies_page

RECONCILE = "hub_reconciliation"
EXPORT = "plansource_hcm_demographic_export"
ROWS = [
    {"pair": "hcm_plansource_demographics", "kind": "field_differs", "record_key": "E000013", "field": "city",
     "hcm_value": "Springfield",
     "other_value": "<b>Ogden</b>", "repair": EXPORT, "what_to_do": "Repairable"},
    {"kind": "in_plansource_not_in_hcm", "record_key": "E999990", "field": "", "hcm_value": "",
     "other_value": "Active", "repair": "none", "what_to_do": "check the employee number in PlanSource"},
    {"kind": "identity_differs", "record_key": "E000014", "field": "ssn", "hcm_value": "***-**-6789",
     "other_value": "", "repair": "none", "what_to_do": "Confirm the right SSN"},
]  # fmt: skip


def test_filters_by_kind_and_employee() -> None:
    assert [r["record_key"] for r in matching(ROWS, kind="field_differs")] == ["E000013"]
    assert [r["record_key"] for r in matching(ROWS, query="ssn")] == ["E000014"]
    assert [r["record_key"] for r in matching(ROWS, query="e9999")] == ["E999990"]
    assert len(matching(ROWS)) == 3


def test_only_repairable_employees_are_ever_sent_whatever_the_browser_posts() -> None:
    assert to_repair(ROWS, ["E000013", "E999990", "E000014", "E123456"]) == {
        "plansource_demographic_repair": ["E000013"]
    }
    assert to_repair(ROWS, []) == {}


def test_each_repair_goes_to_the_integration_that_owns_its_direction() -> None:
    deductions = [
        {"kind": "amount_differs", "record_key": "E000020 MED 2026-01-01", "field": "employee_amount",
         "repair": "plansource_deductions_import"},
        {"kind": "missing_in_payroll", "record_key": "E000020 DEN 2026-01-01", "field": "deduction_code",
         "repair": "plansource_deductions_import"},
        {"kind": "in_payroll_not_in_plansource", "record_key": "E000021 XTRA 2026-01-01",
         "field": "deduction_code", "repair": "none"},
    ]  # fmt: skip
    chosen = ["E000013", *(row["record_key"] for row in deductions)]
    assert to_repair([*ROWS, *deductions], chosen) == {
        "plansource_deductions_repair": ["E000020"],  # one employee, both of their deductions
        "plansource_demographic_repair": ["E000013"],
    }


def test_ijoin_discrepancies_are_repaired_by_the_sync_of_their_plan() -> None:
    ijoin = [
        {"pair": "recordkeeper_ijoin", "kind": "lineup_differs", "record_key": "P0004", "field": "funds",
         "repair": "ijoin_plan_sync"},
        {"pair": "recordkeeper_ijoin", "kind": "contribution_rates_differ",
         "record_key": "P0001/P0001-000002", "repair": "ijoin_participant_sync"},
        {"pair": "recordkeeper_ijoin", "kind": "participant_missing_in_ijoin",
         "record_key": "P0001/P0001-000009", "repair": "ijoin_participant_sync"},
        {"pair": "recordkeeper_ijoin", "kind": "draft_awaiting_review", "record_key": "P0014",
         "repair": "none"},
    ]  # fmt: skip
    assert to_repair(ijoin, [row["record_key"] for row in ijoin]) == {
        "ijoin_participant_repair": ["P0001"],  # one plan, both of its participants
        "ijoin_plan_repair": ["P0004"],
    }


def test_each_value_says_which_system_holds_it() -> None:
    row = {"pair": "recordkeeper_ijoin", "hcm_value": "Acme", "other_value": "Acme Old"}
    assert values_of(row) == [("Recordkeeper", "Acme"), ("iJoin", "Acme Old")]
    assert values_of({**ROWS[0], "other_value": ""}) == [("HCM", "Springfield")]


def detail_of(summary: dict) -> object:
    facts = RunFacts(dag_id=RECONCILE, run_id="manual__1", state="success", summary=summary)
    return run_detail(run_row(facts, "Hub Reconciliation"), "manual__1", summary, [], "", None)


def test_the_page_offers_a_box_only_for_repairable_rows_and_escapes_values() -> None:
    detail = detail_of({"status": "Completed", "integration_run_name": "Nightly", "discrepancies": 3})
    html = discrepancies_page(
        detail, ROWS, root="", total=3, kinds=["field_differs"], kind="", query="", shown_limit=100,
        may_repair=True,
    )  # fmt: skip
    assert html.count('type="checkbox" name="employee"') == 1
    assert 'value="E000013"' in html and "&lt;b&gt;Ogden&lt;/b&gt;" in html
    assert '<span class="side">HCM:</span> Springfield' in html
    assert "<td>City</td>" in html and "<td>SSN</td>" in html  # fields in a clerk's words
    assert "A field differs" in html and "In PlanSource, not in the HCM" in html
    assert 'action="/activity-monitor/runs/hub_reconciliation/manual__1/repair"' in html
    assert "Repair all 1 repairable shown" in html
    read_only = discrepancies_page(
        detail, ROWS, root="", total=3, kinds=[], kind="", query="", shown_limit=100, may_repair=False
    )
    assert "checkbox" not in read_only and "repair-selected" not in read_only


def test_the_run_page_links_its_discrepancies() -> None:
    summary = {"status": "Completed", "integration_run_name": "Nightly", "discrepancies": 3}
    html = detail_page(detail_of(summary), root="")
    assert (
        'id="discrepancies-link" href="/activity-monitor/runs/hub_reconciliation/manual__1/discrepancies"'
        in html
    )


def test_the_history_is_the_last_full_nights_oldest_first_each_bar_a_link() -> None:
    from datetime import UTC, datetime

    from benefits_hub.ui.reconcile import history
    from benefits_hub.ui.render_reconcile import history_html

    def night(run_id: str, day: int, found: int) -> RunFacts:
        return RunFacts(
            dag_id=RECONCILE, run_id=run_id, state="success", end_date=datetime(2026, 12, day, 4, tzinfo=UTC),
            summary={"discrepancies": found},
        )  # fmt: skip

    runs = [
        (night("b", 3, 7), {}),
        (night("a", 2, 9), {}),
        (night("narrow", 4, 1), {"include_employees": "E1"}),
    ]
    nights = history(runs)
    assert [(n.run_id, n.discrepancies) for n in nights] == [("a", 9), ("b", 7)]
    svg = history_html(nights, "", RECONCILE)
    assert svg.count("<rect") == 2 and "2026-12-02: 9 discrepancies" in svg
    assert 'href="/activity-monitor/runs/hub_reconciliation/b"' in svg
    assert history_html([], "", RECONCILE) == ""
