"""The HCM database (``hcm_db``), through whichever SQL provider hook its connection names.

SQLite by default, PostgreSQL in production: the connection's type picks the provider hook
(``SqliteHook``, ``PostgresHook``...), and the SQL here is portable between them. Rows are streamed
with a server-side cursor where the driver has one, ``fetchmany`` batches otherwise: memory stays flat.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from benefits_hub.hooks.sql import MAX_BOUND_PARAMS, SqlSourceHook

EMPLOYEE_COLUMNS = (
    "p.person_number, p.first_name, p.middle_name, p.last_name, p.ssn, p.birth_date, p.gender_code, "
    "p.marital_status_code, p.address_1, p.address_2, p.city, p.state, p.zip_code, p.country, "
    "p.home_phone, p.work_email, p.plansource_subscriber_id, p.plansource_username, "
    "e.ein, e.employee_status_code, e.employment_type_code, e.pay_group_code, e.pay_type_code, "
    "e.union_code, e.hire_date, e.original_hire_date, e.termination_date, e.termination_reason_code, "
    "e.annual_salary, e.job_title, e.location, e.division"
)
# Only the primary-EIN employment goes to PlanSource (the seed: multiple EINs are not supported).
PRIMARY_EMPLOYEES = (
    f"SELECT {EMPLOYEE_COLUMNS} FROM hcm_person p "
    "JOIN hcm_employment e ON e.person_number = p.person_number AND e.is_primary = 1"
)
# A person is changed if their person row or any of their employments changed: both columns are
# indexed, so a 1,000-change delta over a million employees is two index range scans.
CHANGED_PEOPLE = (
    "SELECT person_number FROM hcm_person WHERE updated_at >= {p} AND updated_at < {p} "
    "UNION SELECT person_number FROM hcm_employment WHERE updated_at >= {p} AND updated_at < {p}"
)


class HcmHook(SqlSourceHook):
    """Reads employees from the HCM and writes payroll deductions; the hub's only SQL against it."""

    conn_name_attr = "hcm_conn_id"
    default_conn_name = "hcm_db"
    hook_name = "HCM database"

    def __init__(self, hcm_conn_id: str = default_conn_name) -> None:
        super().__init__(hcm_conn_id)
        self.hcm_conn_id = hcm_conn_id

    def iter_primary_employees(
        self,
        *,
        changed_since: datetime | None = None,
        changed_before: datetime | None = None,
        person_numbers: Sequence[str] = (),
    ) -> Iterator[dict[str, Any]]:
        """Primary-EIN employees in person-number (byte) order, narrowed by window and/or person numbers."""
        p = self.db.placeholder
        order = f" ORDER BY p.person_number{self.byte_order}"
        person_numbers = sorted(set(person_numbers))  # chunk after chunk, still in order
        conditions: list[str] = []
        params: list[Any] = []
        if changed_since is not None:
            end = changed_before or datetime.max
            conditions.append(f"p.person_number IN ({CHANGED_PEOPLE.format(p=p)})")
            params += [self._ts(changed_since), self._ts(end)] * 2
        if person_numbers:
            for start in range(0, len(person_numbers), MAX_BOUND_PARAMS):
                chunk = list(person_numbers[start : start + MAX_BOUND_PARAMS])
                where = " AND ".join([*conditions, f"p.person_number IN ({', '.join([p] * len(chunk))})"])
                yield from self._stream(f"{PRIMARY_EMPLOYEES} WHERE {where}{order}", [*params, *chunk])
            return
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        yield from self._stream(f"{PRIMARY_EMPLOYEES}{where}{order}", params)

    def without_primary_employment(
        self,
        *,
        changed_since: datetime | None = None,
        changed_before: datetime | None = None,
        person_numbers: Sequence[str] = (),
    ) -> Iterator[str]:
        """Person numbers in the same scope as :meth:`iter_primary_employees` that it cannot return:
        people with no employment marked primary. Never silently left out: each becomes an error row."""
        p = self.db.placeholder
        conditions = [
            "NOT EXISTS (SELECT 1 FROM hcm_employment e WHERE e.person_number = p.person_number"
            " AND e.is_primary = 1)"
        ]
        params: list[Any] = []
        if changed_since is not None:
            conditions.append(f"p.person_number IN ({CHANGED_PEOPLE.format(p=p)})")
            params += [self._ts(changed_since), self._ts(changed_before or datetime.max)] * 2
        chunks = [
            list(person_numbers[i : i + MAX_BOUND_PARAMS])
            for i in range(0, len(person_numbers), MAX_BOUND_PARAMS)
        ] or [[]]
        for chunk in chunks:
            where = list(conditions)
            if chunk:
                where.append(f"p.person_number IN ({', '.join([p] * len(chunk))})")
            sql = f"SELECT p.person_number FROM hcm_person p WHERE {' AND '.join(where)}"
            for row in self._stream(f"{sql} ORDER BY p.person_number", [*params, *chunk]):
                yield row["person_number"]

    def known_person_numbers(self, person_numbers: Sequence[str], conn: Any = None) -> set[str]:
        """Which of ``person_numbers`` the HCM has at all (any employment); on ``conn`` when given."""
        sql = "SELECT person_number FROM hcm_person WHERE person_number IN"
        rows = self.in_chunks(sql, person_numbers, conn=conn)
        return {row["person_number"] for row in rows}

    def primary_status_counts(self) -> dict[str, int]:
        """How many primary-EIN employees the HCM holds in each employee status code (the circuit
        breaker's population: one grouped scan)."""
        sql = (
            "SELECT e.employee_status_code AS code, COUNT(*) AS n FROM hcm_employment e "
            "WHERE e.is_primary = 1 GROUP BY e.employee_status_code"
        )
        return {str(row["code"] or ""): int(row["n"]) for row in self._stream(sql, [])}

    # -- payroll deductions (the import's target) -------------------------------------------------
    def iter_payroll_deductions(self, plan_year_start: str) -> Iterator[dict[str, Any]]:
        """The plan year's loaded deductions, ordered by (person number, deduction code, effective date)
        in byte order (the reconciliation's merge)."""
        from benefits_hub.deductions.rules import DEDUCTION_COLUMNS

        order = ", ".join(f"{c}{self.byte_order}" for c in ("person_number", "deduction_code"))
        sql = (
            f"SELECT {', '.join(DEDUCTION_COLUMNS)} FROM hcm_payroll_deduction "
            f"WHERE plan_year_start = {self.db.placeholder} ORDER BY {order}, effective_date"
        )
        yield from self._stream(sql, [plan_year_start])

    def people_with_deductions(self) -> int:
        """How many employees have at least one payroll deduction loaded (the circuit breaker's
        population for the import)."""
        sql = "SELECT COUNT(DISTINCT person_number) AS n FROM hcm_payroll_deduction"
        row = next(self._stream(sql, []), None)
        return int(row["n"]) if row else 0

    def latest_assignment_change(self) -> datetime | None:
        """When any employment (assignment) last changed in the HCM, or ``None`` for an empty HCM."""
        row = next(self._stream("SELECT MAX(updated_at) AS latest FROM hcm_employment", []), None)
        latest = row["latest"] if row else None
        if latest is None:
            return None
        if isinstance(latest, datetime):
            return latest if latest.tzinfo else latest.replace(tzinfo=UTC)
        return datetime.fromisoformat(str(latest)).replace(tzinfo=UTC)
