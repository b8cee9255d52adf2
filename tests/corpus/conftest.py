"""The corpus report: one line the lead can quote, printed and written to test-artifacts/."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

REPORT = Path(__file__).resolve().parents[2] / "test-artifacts" / "corpus-report.txt"
_passed: dict[str, str] = {}  # case -> expected outcome, for each case whose test passed


def record_result(case: object) -> None:
    _passed[str(case)] = case.outcome  # type: ignore[attr-defined]


def report_line(total: int, outcomes: Counter[str]) -> str:
    return (
        f"bad-input corpus: {total} cases passed as expected; "
        f"{outcomes['error_row']} clear error row, "
        f"{outcomes['refused_trigger']} refused trigger, "
        f"{outcomes['refused_run']} refused run (unusable file or answer, plain reason), "
        f"{outcomes['accepted'] + outcomes['normalised']} accepted "
        f"({outcomes['normalised']} of them normalised)"
    )


@pytest.fixture(scope="session", autouse=True)
def corpus_report() -> Iterator[None]:
    yield
    if not _passed:
        return
    from tests.corpus.corpus import load_cases

    total = len(load_cases())
    line = report_line(len(_passed), Counter(_passed.values())) + f" (of {total} in the corpus)"
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(line + "\n")
    _summary.append(line)


_summary: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in _summary:  # after the session fixtures finished, so the line is complete
        terminalreporter.write_line(line)


# The end-to-end batches use the e2e fixtures as they are (real metadata DB, real sandbox servers).
from tests.e2e.conftest import airflow_db, clean_hub_state, plansource_admin, sandbox  # noqa: E402, F401
