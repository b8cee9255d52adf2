"""The Mappings page: every cross-reference table as the integrations read it, escaped."""

from __future__ import annotations

from pathlib import Path

import pytest

from benefits_hub.ui.records import mapping_tables
from benefits_hub.ui.render_mappings import MappingTable, mappings_page


def test_every_table_of_the_deployment_is_listed_with_its_codes() -> None:
    tables = {t.table: t for t in mapping_tables()}
    shipped = {p.stem for p in (Path(__file__).resolve().parents[3] / "include" / "xref").glob("*.csv")}
    assert set(tables) == shipped
    assert tables["pay_group"].columns[:2] == ("hcm_code", "plansource_code")
    assert ("BW-US", "ORG-PAY-BIWEEKLY") in {row[:2] for row in tables["pay_group"].rows}
    assert not any(t.problem for t in tables.values())


def test_a_table_that_cannot_be_read_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pay_group.csv").write_text("code,value\nA,B\n")
    monkeypatch.setenv("BENEFITS_HUB_XREF_DIR", str(tmp_path))
    (table,) = mapping_tables()
    assert "has no 'hcm_code' column" in table.problem


def test_the_page_escapes_every_value() -> None:
    html = mappings_page(
        [MappingTable("pay_group", ("hcm_code", "plansource_code"), (("<script>x</script>", "B"),))], root=""
    )
    assert "<script>x" not in html and "&lt;script&gt;x" in html and 'data-table="pay_group"' in html
