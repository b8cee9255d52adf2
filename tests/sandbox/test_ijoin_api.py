"""The iJoin-like API, against the real server process on loopback (seeded from a 6 x 30 recordkeeper)."""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub_sandbox import Sandbox
from hub_sandbox.recordkeeper import ADDED_FUND, plan_version, special_plans

PLANS = special_plans(6)
UNAUTHORIZED = {
    "status": "failure",
    "errors": {"http_status": 401, "message": "Invalid API key", "error_code": "unauthorized"},
    "data": [],
}


class IJoin:
    def __init__(self, sandbox: Sandbox) -> None:
        self.base = sandbox.ijoin_url
        self.headers = {"Authorization": f"Bearer {sandbox.connections()['ijoin_api']['password']}"}

    def call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(
            method, f"{self.base}/api/v1{path}", headers=self.headers, timeout=30, **kwargs
        )

    def data(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.call(method, path, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = requests.request(method, f"{self.base}/sandbox{path}", timeout=30, **kwargs)
        assert resp.status_code == 200, resp.text
        return resp.json()["data"]


@pytest.fixture
def ij(sandbox: Sandbox) -> Iterator[IJoin]:
    client = IJoin(sandbox)
    yield client
    client.admin("DELETE", "/faults")


def rk_version(
    sandbox: Sandbox, plan_id: str, leave_out: tuple[str, ...] = ("phone_contact",)
) -> dict[str, Any]:
    conn = sqlite3.connect(sandbox.recordkeeper_db_path)
    try:
        version = plan_version(conn, plan_id)
    finally:
        conn.close()
    assert version is not None
    return {k: v for k, v in version.items() if k not in leave_out}


def body_of(version: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in version.items() if k not in ("version_id", "created_at", "activated_at")}


GOOD_FUNDS = [
    {
        "fund_id": "F001",
        "ticker": "EVSPX",
        "fund_name": "Evergreen 500 Index Fund",
        "asset_class": "Large Cap Equity",
        "is_default": False,
        "is_open": True,
    },
    {
        "fund_id": "F002",
        "ticker": "PWT45X",
        "fund_name": "Pathway 2045 Target Date Fund",
        "asset_class": "Target Date",
        "is_default": True,
        "is_open": True,
    },
]


def new_plan(ij: IJoin) -> str:
    plan_id = f"T{uuid.uuid4().hex[:8].upper()}"
    plan = ij.admin("POST", "/plans", json={"plan_id": plan_id, "plan_name": "Test Plan"})
    assert plan["status"] == "setup" and plan["active"] is None and plan["draft"] is None
    return plan_id


def new_active_plan(ij: IJoin) -> str:
    plan_id = new_plan(ij)
    body = {
        "plan_name": "Test Plan",
        "employer_ein": "12-3456789",
        "funds": GOOD_FUNDS,
        "default_investment": "F002",
        "match_tiers": [{"contribution_pct": "3.000", "match_pct": 100}],
    }
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json=body)["result"] == "setup_updated"
    assert ij.data("POST", f"/plans/{plan_id}/activate")["result"] == "activated"
    return plan_id


def test_connections_and_auth(sandbox: Sandbox, ij: IJoin) -> None:
    conns = sandbox.connections()
    assert conns["ijoin_api"] == {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": sandbox.ijoin_port,
        "schema": "http",
        "password": sandbox.info["ijoin_api_key"],
    }
    assert conns["recordkeeper_db"] == {"conn_type": "sqlite", "host": str(sandbox.recordkeeper_db_path)}
    env = sandbox.connection_env()
    assert json.loads(env["AIRFLOW_CONN_IJOIN_API"])["port"] == sandbox.ijoin_port
    assert sandbox.ijoin_state_path.exists() and sandbox.ijoin_port != sandbox.http_port

    url = f"{sandbox.ijoin_url}/api/v1/plans"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic aHViOnNlY3JldA=="}):
        resp = requests.get(url, headers=headers, timeout=5)
        assert resp.status_code == 401 and resp.json() == UNAUTHORIZED
    assert requests.get(f"{sandbox.ijoin_url}/sandbox/health", timeout=5).json()["data"] == {"ok": True}
    assert ij.call("GET", "/plans").status_code == 200


def test_seeded_plans_match_the_recordkeeper(sandbox: Sandbox, ij: IJoin) -> None:
    plans = {p["plan_id"]: p for p in ij.data("GET", "/plans")["plans"]}
    assert {p for p in plans if p.startswith("P")} == {f"P000{k}" for k in range(1, 7)}
    assert plans["P0006"]["status"] == "setup" and plans["P0006"]["has_draft"] is False
    assert plans["P0001"] == {
        "plan_id": "P0001",
        "plan_name": "Northwind Logistics 401(k) Plan",
        "status": "active",
        "has_draft": False,
        "created_at": "2025-01-08 09:00:00",
    }
    new = ij.data("GET", "/plans", params={"created_since": "2026-10-01T00:00:00Z"})["plans"]
    assert "P0006" in {p["plan_id"] for p in new} and "P0001" not in {p["plan_id"] for p in new}
    assert ij.call("GET", "/plans", params={"created_since": "yesterday"}).status_code == 400

    p6 = ij.data("GET", "/plans/P0006")
    assert p6["active"] is None and p6["draft"] is None and p6["last_sync"] is None
    for plan_id in ("P0001", "P0002", "P0003", "P0004"):
        plan = ij.data("GET", f"/plans/{plan_id}")
        assert plan["status"] == "active" and plan["do_not_override"] == ["phone_contact"]
        assert plan["default_investment_never_from_recordkeeper"] is (plan_id == "P0004")
        active = plan["active"]
        assert active["version_id"] == f"{plan_id}-v1" and active["activated_at"]
        rk = rk_version(sandbox, plan_id, leave_out=())
        assert active["phone_contact"] == f"(800) 555-{int(plan_id[1:]):04d}" != rk["phone_contact"]
        if plan_id == "P0004":
            assert active["default_investment"] != rk["default_investment"]
            rk["default_investment"] = active["default_investment"]
        assert {**body_of(active), "phone_contact": rk["phone_contact"]} == rk
    assert ij.data("GET", "/plans/P0002")["active"]["employer_ein"] is None
    missing = ij.call("GET", "/plans/P9999")
    assert missing.status_code == 404 and missing.json()["errors"]["error_code"] == "not_found"


def test_recordkeeper_data_syncs_unchanged_and_fields_sent_are_recorded(sandbox: Sandbox, ij: IJoin) -> None:
    body = rk_version(sandbox, "P0001")
    out = ij.data("PUT", "/plans/P0001/sync", json=body)
    assert out["result"] == "unchanged"
    assert out["plan"]["active"]["phone_contact"] == "(800) 555-0001" and out["plan"]["last_sync"]
    # Numbers as strings (as a SQL driver gives NUMERIC) and funds in another order change nothing.
    body["match_tiers"] = [{k: f"{v:.3f}" for k, v in t.items()} for t in body["match_tiers"]]
    body["funds"] = list(reversed(body["funds"]))
    assert ij.data("PUT", "/plans/P0001/sync", json=body)["result"] == "unchanged"
    syncs = ij.admin("GET", "/plans/P0001/syncs")
    assert syncs[-1]["result"] == "unchanged" and "phone_contact" not in syncs[-1]["fields"]
    assert syncs[-1]["fields"] == sorted(body)
    unknown = ij.call("PUT", "/plans/P0001/sync", json={"plan_name": "x", "colour": "red"})
    assert unknown.status_code == 400 and unknown.json()["errors"]["message"] == "Unknown field(s): colour."


def test_lineup_change_on_an_active_plan_makes_a_draft(sandbox: Sandbox, ij: IJoin) -> None:
    plan_id = PLANS["lineup_changed"][0]
    before = ij.data("GET", f"/plans/{plan_id}")
    added = next(
        f["fund_id"] for f in rk_version(sandbox, plan_id)["funds"] if f["fund_name"] == ADDED_FUND[0]
    )
    assert added not in {f["fund_id"] for f in before["active"]["funds"]}
    assert all(f["is_open"] for f in before["active"]["funds"])

    body = rk_version(sandbox, plan_id)
    out = ij.data("PUT", f"/plans/{plan_id}/sync", json=body)
    assert out["result"] == "draft_created"
    plan = out["plan"]
    assert plan["active"] == before["active"]  # untouched
    draft = plan["draft"]
    assert draft["activated_at"] is None and body_of(draft) == {**body, "phone_contact": "(800) 555-0005"}
    assert {p["plan_id"]: p["has_draft"] for p in ij.data("GET", "/plans")["plans"]}[plan_id] is True
    again = ij.data("PUT", f"/plans/{plan_id}/sync", json=body)
    assert again["result"] == "draft_created" and again["plan"]["draft"]["version_id"] == draft["version_id"]

    activated = ij.data("POST", f"/plans/{plan_id}/activate")
    assert activated["result"] == "activated"
    assert (
        activated["plan"]["draft"] is None
        and activated["plan"]["active"]["version_id"] == draft["version_id"]
    )
    assert activated["plan"]["active"]["activated_at"]
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json=body)["result"] == "unchanged"
    no_draft = ij.call("POST", f"/plans/{plan_id}/activate")
    assert no_draft.status_code == 409 and no_draft.json()["errors"]["error_code"] == "no_draft"


def test_sync_rules_on_setup_and_active_plans(ij: IJoin) -> None:
    plan_id = new_active_plan(ij)
    plan = ij.data("GET", f"/plans/{plan_id}")
    assert plan["status"] == "active" and plan["active"]["match_tiers"] == [
        {"contribution_pct": 3.0, "match_pct": 100.0}
    ]
    out = ij.data("PUT", f"/plans/{plan_id}/sync", json={"plan_name": "Renamed", "employer_name": "Acme"})
    assert out["result"] == "updated" and out["plan"]["draft"] is None
    assert out["plan"]["active"]["plan_name"] == "Renamed"
    assert out["plan"]["active"]["version_id"] == plan["active"]["version_id"]  # in place
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json={"plan_name": "Renamed"})["result"] == "unchanged"
    # A fund's name is not a line-up change; closing a fund is.
    renamed = [{**GOOD_FUNDS[0], "fund_name": "Evergreen 500"}, GOOD_FUNDS[1]]
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json={"funds": renamed})["result"] == "updated"
    closed = [{**GOOD_FUNDS[0], "is_open": False}, GOOD_FUNDS[1]]
    out = ij.data("PUT", f"/plans/{plan_id}/sync", json={"funds": closed, "plan_name": "Draft name"})
    assert out["result"] == "draft_created"
    assert out["plan"]["active"]["plan_name"] == "Renamed" and out["plan"]["active"]["funds"][0]["is_open"]
    assert (
        out["plan"]["draft"]["plan_name"] == "Draft name" and not out["plan"]["draft"]["funds"][0]["is_open"]
    )
    results = [s["result"] for s in ij.admin("GET", f"/plans/{plan_id}/syncs")]
    assert results == ["setup_updated", "updated", "unchanged", "updated", "draft_created"]


def test_activation_is_refused_with_reasons(ij: IJoin) -> None:
    plan_id = new_plan(ij)
    no_draft = ij.call("POST", f"/plans/{plan_id}/activate")
    assert no_draft.status_code == 409
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json={})["result"] == "setup_updated"
    refused = ij.call("POST", f"/plans/{plan_id}/activate")
    assert refused.status_code == 422
    assert refused.json() == {
        "status": "failure",
        "errors": {
            "http_status": 422,
            "message": "Plan cannot be activated",
            "error_code": "validation_failed",
            "details": [
                "Employer EIN is missing",
                "The fund line-up is empty",
                "Default investment is not set",
            ],
        },
        "data": [],
    }
    no_ticker = [
        {**GOOD_FUNDS[0], "ticker": None},
        GOOD_FUNDS[1],
        {**GOOD_FUNDS[1], "fund_id": "F003", "ticker": None, "is_open": False},
    ]
    out = ij.data("PUT", f"/plans/{plan_id}/sync", json={"funds": no_ticker, "default_investment": "F003"})
    assert out["result"] == "setup_updated" and out["plan"]["status"] == "setup"
    refused = ij.call("POST", f"/plans/{plan_id}/activate").json()["errors"]["details"]
    assert refused == [
        "Employer EIN is missing",
        "Fund F001 has no ticker",
        "Default investment F003 is not an open fund of the line-up",
    ]
    fix = {"employer_ein": "12-3456789", "funds": GOOD_FUNDS, "default_investment": "F002"}
    assert ij.data("PUT", f"/plans/{plan_id}/sync", json=fix)["result"] == "setup_updated"
    done = ij.data("POST", f"/plans/{plan_id}/activate")
    assert done["result"] == "activated" and done["plan"]["status"] == "active"
    assert done["plan"]["active"]["plan_name"] == "Test Plan"  # from POST /sandbox/plans


def test_seeded_new_plan_syncs_as_setup_then_activates(sandbox: Sandbox, ij: IJoin) -> None:
    plan_id = PLANS["new_plan"][0]
    out = ij.data("PUT", f"/plans/{plan_id}/sync", json=rk_version(sandbox, plan_id, leave_out=()))
    assert out["result"] == "setup_updated" and out["plan"]["active"] is None and out["plan"]["draft"]
    assert ij.data("POST", f"/plans/{plan_id}/activate")["plan"]["status"] == "active"


def test_sandbox_plans_conflict_and_replace(ij: IJoin) -> None:
    plan_id = new_active_plan(ij)
    dup = requests.post(f"{ij.base}/sandbox/plans", json={"plan_id": plan_id}, timeout=5)
    assert dup.status_code == 409
    fresh = ij.admin("POST", "/plans", json={"plan_id": plan_id, "plan_name": "Again", "replace": True})
    assert fresh["status"] == "setup" and fresh["active"] is None


def _participant(pid: str, **changes: Any) -> dict[str, Any]:
    record = {
        "participant_id": pid,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "birth_date": "1980-12-10",
        "hire_date": "2015-03-01",
        "termination_date": None,
        "status": "A",
        "email": "ada@example.com",
        "pay_frequency": "Biweekly",
        "annual_salary": "85000.00",
        "salary_source": "census annual salary",
        "balances": [
            {"fund_id": "F001", "money_source": "EE_PRETAX", "balance": "1234.56", "as_of": "2026-10-31"}
        ],
        "allocations": [{"fund_id": "F001", "pct": "100.000"}],
        "contribution_rates": {"pretax_pct": "6.000", "roth_pct": "0", "aftertax_pct": "0"},
        "sync_status": "Synchronized",
        "sync_messages": [],
    }
    return {**record, **changes}


def test_participants_upsert(ij: IJoin) -> None:
    plan_id = new_active_plan(ij)
    path = f"/plans/{plan_id}/participants"
    batch = [_participant(f"{plan_id}-000001"), _participant(f"{plan_id}-000002", pay_frequency="W")]
    out = ij.data("PUT", path, json={"participants": batch})
    assert [r["status"] for r in out["results"]] == ["created", "created"] and out["created"] == 2
    assert [r["status"] for r in ij.data("PUT", path, json={"participants": batch})["results"]] == [
        "unchanged",
        "unchanged",
    ]
    warned = _participant(
        f"{plan_id}-000002",
        sync_status="Synchronized with warnings",
        sync_messages=["Investment allocations add up to 95.00%, not 100%."],
        allocations=[],
    )
    bad_ssn = "12345"
    bad = [
        warned,
        _participant(f"{plan_id}-000003", colour="red"),
        _participant(
            f"{plan_id}-000004",
            balances=[{"fund_id": "F999", "money_source": "EE_PRETAX", "balance": 1, "as_of": "2026-10-31"}],
        ),
        _participant(f"{plan_id}-000005", pay_frequency="V"),
        _participant(f"{plan_id}-000006", ssn=bad_ssn),
        _participant(f"{plan_id}-000007", first_name=None),
        _participant(f"{plan_id}-000008", ssn="123-45-6789"),
    ]
    resp = ij.call("PUT", path, json={"participants": bad})
    assert bad_ssn not in resp.text
    results = resp.json()["data"]["results"]
    assert [r["status"] for r in results] == [
        "updated",
        "failed",
        "failed",
        "failed",
        "failed",
        "failed",
        "created",
    ]
    assert results[1]["message"] == "Unknown field(s): colour."
    assert results[2]["message"] == "balances[0].fund_id is not a fund of the plan's line-up."
    assert results[3]["message"].startswith("pay_frequency must be one of")
    assert results[4]["message"] == "ssn is not a valid 9-digit social security number."

    raw = ij.admin("GET", f"/participants/{plan_id}/{plan_id}-000002")
    assert raw["sync_status"] == "Synchronized with warnings" and raw["body"]["allocations"] == []
    assert raw["body"]["annual_salary"] == 85000.0 and raw["body"]["pay_frequency"] == "Biweekly"
    assert ij.admin("GET", f"/participants/{plan_id}/{plan_id}-000008")["body"]["ssn"] == "123456789"

    page = ij.data("GET", path, params={"page": 1, "per_page": 2})
    assert page["total"] == 3 and page["has_next"] is True
    assert [p["participant_id"] for p in page["participants"]] == [f"{plan_id}-000001", f"{plan_id}-000002"]
    assert page["participants"][0]["created_at"]
    assert ij.call("GET", path, params={"per_page": 501}).status_code == 400

    too_many = ij.call("PUT", path, json={"participants": [_participant(f"X{i}") for i in range(501)]})
    assert too_many.status_code == 400


def test_participants_need_a_plan_sync_first(ij: IJoin) -> None:
    unknown = ij.call(
        "PUT", "/plans/P9999/participants", json={"participants": [_participant("P9999-000001")]}
    )
    assert unknown.status_code == 404
    assert unknown.json()["errors"] == {
        "http_status": 404,
        "message": "Plan not found: run Plan Sync first",
        "error_code": "plan_not_found",
    }
    bare = new_plan(ij)
    empty = ij.call("PUT", f"/plans/{bare}/participants", json={"participants": [_participant(f"{bare}-1")]})
    assert empty.status_code == 409 and empty.json()["errors"]["error_code"] == "plan_not_synced"


def test_participant_batch_of_500_is_one_quick_call(ij: IJoin) -> None:
    plan_id = new_active_plan(ij)
    batch = [_participant(f"{plan_id}-{i:06d}") for i in range(1, 501)]
    out = ij.data("PUT", f"/plans/{plan_id}/participants", json={"participants": batch})
    assert out["created"] == 500 and out["failed"] == 0
    assert ij.data("GET", f"/plans/{plan_id}/participants", params={"per_page": 1})["total"] == 500


def test_elections_pending_then_sent(ij: IJoin) -> None:
    pending = ij.data("GET", "/elections", params={"status": "pending"})["elections"]
    seeded = [e for e in pending if e["election_id"] in ("EL000001", "EL000002", "EL000003")]
    assert [(e["participant_id"], e["kind"]) for e in seeded] == [
        ("P0001-000002", "contribution_rate"),
        ("P0001-000003", "contribution_rate"),
        ("P0001-000004", "allocation"),
    ]
    assert seeded[0]["contribution_rates"] == {"pretax_pct": 8.0, "roth_pct": 2.0, "aftertax_pct": 0.0}
    assert seeded[0]["allocations"] is None
    assert sum(a["pct"] for a in seeded[2]["allocations"]) == 100

    first = ij.data("POST", "/elections/EL000001/sent")
    assert first["status"] == "sent" and first["sent_at"]
    assert ij.data("POST", "/elections/EL000001/sent") == first  # idempotent
    left = {e["election_id"] for e in ij.data("GET", "/elections")["elections"]}
    assert "EL000001" not in left and "EL000002" in left
    assert "EL000001" in {
        e["election_id"] for e in ij.data("GET", "/elections", params={"status": "sent"})["elections"]
    }
    missing = ij.call("POST", "/elections/EL999999/sent")
    assert missing.status_code == 404 and missing.json()["errors"]["error_code"] == "not_found"

    added = ij.admin(
        "POST",
        "/elections",
        json={
            "elections": [
                {
                    "plan_id": "P0001",
                    "participant_id": "P0001-000005",
                    "kind": "allocation",
                    "allocations": [{"fund_id": "F001", "pct": 100}],
                }
            ]
        },
    )["ids"]
    assert len(added) == 1
    mine = [e for e in ij.data("GET", "/elections")["elections"] if e["election_id"] == added[0]]
    assert (
        mine[0]["allocations"] == [{"fund_id": "F001", "pct": 100.0}]
        and mine[0]["contribution_rates"] is None
    )
    bad = requests.post(
        f"{ij.base}/sandbox/elections",
        timeout=5,
        json={"elections": [{"plan_id": "P0001", "participant_id": "x", "kind": "transfer"}]},
    )
    assert bad.status_code == 400


def test_activity_log(ij: IJoin) -> None:
    entry = {
        "type": "Plan Sync",
        "plan_id": "P0001",
        "status": "Successful with warnings",
        "started_at": "2031-01-02T03:04:05Z",
        "finished_at": "2031-01-02T03:04:09+00:00",
        "errors": ["Plan P0005: the fund line-up changed"],
        "payload_url": "file:///tmp/payload.jsonl",
    }
    activity_id = ij.data("POST", "/activity", json=entry)["id"]
    assert isinstance(activity_id, int)
    found = ij.data("GET", "/activity", params={"since": "2031-01-01T00:00:00Z"})["activities"]
    assert [a["id"] for a in found] == [activity_id]
    assert found[0]["started_at"] == "2031-01-02 03:04:05" and found[0]["errors"] == entry["errors"]
    assert ij.data("GET", "/activity", params={"since": "2031-01-03T00:00:00Z"})["activities"] == []
    assert ij.call("POST", "/activity", json={**entry, "type": "Coffee"}).status_code == 400


def test_faults(ij: IJoin) -> None:
    ij.admin("POST", "/faults", json={"status": 503, "count": 1})
    failed = ij.call("GET", "/plans")
    assert failed.status_code == 503 and failed.json()["errors"]["error_code"] == "sandbox_fault"
    assert ij.call("GET", "/plans").status_code == 200
    stats = ij.admin("GET", "/stats")
    assert stats["plans"]["active"] >= 5 and stats["requests_by_path"]["GET /api/v1/plans"] >= 2
