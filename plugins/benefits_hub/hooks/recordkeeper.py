"""The recordkeeper's database (Relius-style, connection ``recordkeeper_db``; tables documented in
``include/sql/recordkeeper_schema.sql``). Read-only except the enrollment write-back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from benefits_hub.hooks.sql import SqlSourceHook


class RecordkeeperHook(SqlSourceHook):
    conn_name_attr = "recordkeeper_conn_id"
    default_conn_name = "recordkeeper_db"
    hook_name = "Recordkeeper database"

    def __init__(self, recordkeeper_conn_id: str = default_conn_name) -> None:
        super().__init__(recordkeeper_conn_id)
        self.recordkeeper_conn_id = recordkeeper_conn_id

    def _rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        p = self.placeholder
        return list(self._stream(sql.replace("?", p), params))

    def plan_ids(self) -> list[str]:
        return [r["plan_id"] for r in self._rows("SELECT plan_id FROM rk_plan ORDER BY plan_id")]

    def plan(self, plan_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM rk_plan WHERE plan_id = ?", plan_id)
        return rows[0] if rows else None

    def contacts(self, plan_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM rk_plan_contact WHERE plan_id = ?", plan_id)

    def match_tiers(self, plan_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM rk_match_tier WHERE plan_id = ? ORDER BY tier", plan_id)

    def funds(self, plan_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM rk_fund WHERE plan_id = ? ORDER BY sort_order, fund_id", plan_id)

    def participants(self, plan_id: str) -> Iterator[dict[str, Any]]:
        p = self.placeholder
        yield from self._stream(
            f"SELECT * FROM rk_participant WHERE plan_id = {p} ORDER BY participant_id", [plan_id]
        )

    def participant_scans(
        self, conn: Any, plan_id: str, payroll_since: str
    ) -> dict[str, Iterator[dict[str, Any]]]:
        """A plan's participants and their related rows as five scans on one connection, each ordered by
        participant id in byte order, so the caller merges them in one pass (no ``IN (...)`` per batch,
        no connection per query). Payroll is joined to its participant here: Relius keys it by SSN."""
        p, order = self.placeholder, self.byte_order
        pid = f"participant_id{order}"
        scans = {
            "participants": (f"SELECT * FROM rk_participant WHERE plan_id = {p} ORDER BY {pid}", [plan_id]),
            "balances": (
                f"SELECT * FROM rk_balance WHERE plan_id = {p} ORDER BY {pid}, fund_id, money_source",
                [plan_id],
            ),
            "allocations": (
                f"SELECT * FROM rk_allocation WHERE plan_id = {p} ORDER BY {pid}, fund_id",
                [plan_id],
            ),
            "rates": (f"SELECT * FROM rk_contribution_rate WHERE plan_id = {p} ORDER BY {pid}", [plan_id]),
            "payroll": (
                "SELECT r.participant_id, y.pay_date, y.pay_frequency_code FROM rk_participant r "
                "JOIN rk_payroll y ON y.plan_id = r.plan_id AND y.ssn = r.ssn "
                f"WHERE r.plan_id = {p} AND r.ssn <> '' AND y.pay_date >= {p} "
                f"ORDER BY r.participant_id{order}, y.pay_date",
                [plan_id, payroll_since],
            ),
        }
        return {
            name: self._stream(sql, params, conn=conn, name=f"hub_{name}")
            for name, (sql, params) in scans.items()
        }

    # -- the one write: enrollment-site elections -------------------------------------------------
    def applied_elections(self, election_ids: list[str]) -> set[str]:
        """Which of ``election_ids`` the recordkeeper has applied already (``rk_applied_election``)."""
        found: set[str] = set()
        for start in range(0, len(election_ids), 500):
            chunk = election_ids[start : start + 500]
            marks = ", ".join([self.placeholder] * len(chunk))
            rows = self.db.get_records(
                f"SELECT election_id FROM rk_applied_election WHERE election_id IN ({marks})", tuple(chunk)
            )
            found.update(str(row[0]) for row in rows)
        return found

    def apply_election(self, election: dict[str, Any], applied_at: str) -> bool:
        """Apply one election in one transaction, recorded in ``rk_applied_election``.

        Returns False when it was applied before (by an earlier attempt whose "mark sent" in iJoin
        did not happen): the change is never applied twice.
        """
        p = self.placeholder
        plan_id, participant_id, election_id = (
            election["plan_id"],
            election["participant_id"],
            election["election_id"],
        )
        conn = self.db.get_conn()
        try:
            cursor = conn.cursor()
            cursor.execute(f"SELECT 1 FROM rk_applied_election WHERE election_id = {p}", (election_id,))
            if cursor.fetchone():
                conn.rollback()
                return False
            if election["kind"] == "contribution_rate":
                rates = election["contribution_rates"]
                values = (
                    rates.get("pretax_pct"),
                    rates.get("roth_pct"),
                    rates.get("aftertax_pct"),
                    applied_at[:10],
                )
                cursor.execute(
                    f"UPDATE rk_contribution_rate SET pretax_pct = {p}, roth_pct = {p}, aftertax_pct = {p}, "
                    f"effective_date = {p} WHERE plan_id = {p} AND participant_id = {p}",
                    (*values, plan_id, participant_id),
                )
                if cursor.rowcount == 0:
                    cursor.execute(
                        "INSERT INTO rk_contribution_rate (pretax_pct, roth_pct, aftertax_pct, "
                        f"effective_date, plan_id, participant_id) VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                        (*values, plan_id, participant_id),
                    )
            else:
                cursor.execute(
                    f"DELETE FROM rk_allocation WHERE plan_id = {p} AND participant_id = {p}",
                    (plan_id, participant_id),
                )
                cursor.executemany(
                    "INSERT INTO rk_allocation (plan_id, participant_id, fund_id, pct) "
                    f"VALUES ({p}, {p}, {p}, {p})",
                    [(plan_id, participant_id, a["fund_id"], str(a["pct"])) for a in election["allocations"]],
                )
            cursor.execute(
                "INSERT INTO rk_applied_election (election_id, plan_id, participant_id, kind, applied_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p})",
                (election_id, plan_id, participant_id, election["kind"], applied_at),
            )
            conn.commit()
            return True
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.close()

    def participant_exists(self, plan_id: str, participant_id: str) -> bool:
        return bool(
            self._rows(
                "SELECT 1 AS ok FROM rk_participant WHERE plan_id = ? AND participant_id = ?",
                plan_id,
                participant_id,
            )
        )
