from __future__ import annotations

from benefits_hub.xref import load_table, xref_dir

TABLES = [
    "employment_type",
    "pay_group",
    "pay_type",
    "termination_reason",
    "union_code",
    "gender",
    "marital_status",
    "employee_status",
]


def test_every_table_loads_with_codes() -> None:
    for table in TABLES:
        xref = load_table(table)
        assert xref.rows, table
        assert all(row.get("plansource_code") for row in xref.rows.values()), table


def test_lookup_and_missing() -> None:
    pay_type = load_table("pay_type")
    assert pay_type.lookup("H") == "HOURLY"
    assert pay_type.lookup(" S ") == "SALARY"
    assert pay_type.lookup("Z") is None
    assert pay_type.lookup(None) is None


def test_tables_are_data_under_include() -> None:
    assert xref_dir().parts[-2:] == ("include", "xref")
