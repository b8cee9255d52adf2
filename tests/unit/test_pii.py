from __future__ import annotations

from benefits_hub.pii import mask_field, mask_ssn, redact


def test_mask_ssn() -> None:
    assert mask_ssn("123-45-6789") == "***-**-6789"
    assert mask_ssn("123456789") == "***-**-6789"
    assert mask_ssn(None) == "***-**-****"


def test_mask_field_by_name() -> None:
    assert mask_field("ssn", "123456789") == "***-**-6789"
    assert mask_field("birth_date", "1980-02-03") == "****-**-**"
    assert mask_field("hire_date", "2020-01-01") == "2020-01-01"
    assert mask_field("city", "id 123456789") == "id ***-**-6789"


def test_redact_free_text() -> None:
    text = redact("ssn 123-45-6789 born 1980-02-03 or 02/03/1980, employee E000123")
    assert "6789" in text and "123-45" not in text and "1980" not in text and "E000123" in text


def test_redact_truncates() -> None:
    assert len(redact("x" * 1000)) == 300


def test_run_ids_and_timestamps_stay_readable_birth_dates_do_not() -> None:
    from benefits_hub.pii import redact

    text = redact("run manual__2026-12-06T11:06:12.076754+00:00 ended 2026-12-06T11:07:00Z")
    assert "manual__2026-12-06T11:06:12.076754+00:00" in text and "2026-12-06T11:07:00Z" in text
    for birth_date in ("1980-01-02", "1980-01-02T00:00:00.000Z", "01/02/1980", "1980/01/02"):
        assert "1980" not in redact(f"birthdate {birth_date} is invalid")
