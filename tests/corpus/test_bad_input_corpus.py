"""Every case of the bad-input corpus (the YAML files here), one test each, through the hub's real rules.

Record-level cases go through the validation and mapping functions the stages call; param cases through
the DAG's own JSON schema and the validate stage's parse; file and page cases through the real loader and
hook (a CSV written in a temporary folder, a real HTTP server on 127.0.0.1). The end-to-end batches, where
the bad records of one source travel with good ones through a real DAG run, are in
``test_bad_input_batches.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.corpus.conftest import record_result
from tests.corpus.corpus import (
    Case,
    check,
    load_cases,
    observe_correction,
    observe_coverage,
    observe_hcm,
    observe_page,
    observe_params,
    observe_recordkeeper,
    observe_xref,
    resolve,
)

CASES = load_cases()
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dags() -> dict[str, Any]:
    """The DAGs whose params the param cases trigger, parsed once from dags/ (as the scheduler does)."""
    from airflow.dag_processing.dagbag import DagBag

    wanted = {c.data["dag_id"] for c in CASES if "dag_id" in c.data} | {
        c.file["dag_id"] for c in CASES if "dag_id" in c.file
    }
    found: dict[str, Any] = {}
    for dag_id in sorted(wanted):
        bag = DagBag(str(REPO / "dags" / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        found[dag_id] = bag.dags[dag_id]
    return found


def test_the_corpus_is_big_enough_and_well_formed() -> None:
    ids = [str(c) for c in CASES]
    assert len(ids) == len(set(ids)), "case ids repeat"
    assert len(CASES) >= 60
    for case in CASES:
        assert case.data.get("wrong"), f"{case}: says nothing about what is wrong"
        assert case.outcome in ("error_row", "refused_trigger", "refused_run", "accepted", "normalised")
        if case.outcome == "error_row":
            assert {"field", "rule", "reason"} <= set(case.expect), case
        if case.outcome == "refused_trigger":
            assert {"param", "layer"} <= set(case.expect), case


@pytest.mark.parametrize("case", CASES, ids=str)
def test_case(case: Case, dags: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import benefits_hub.params as params_models

    if case.source == "hcm_employees":
        seen = observe_hcm(case)
    elif case.source == "plansource_coverages":
        seen = observe_coverage(case)
    elif case.source == "recordkeeper":
        seen = observe_recordkeeper(case)
    elif case.source == "xref_tables":
        seen = observe_xref(case, tmp_path / "xref")
    elif case.source == "plansource_pages":
        seen = observe_page(case, tmp_path, monkeypatch.setenv)
    elif case.source == "transaction_assistant":
        seen = observe_correction(case, dags[case.file["dag_id"]])
    elif case.source == "dag_params":
        model = getattr(params_models, case.data["model"]) if case.data.get("model") else None
        seen = observe_params(case, dags[case.data["dag_id"]], resolve(case.data["conf"]), model)
    else:
        pytest.fail(f"{case}: no runner for source {case.source!r}")
    check(case, seen)
    record_result(case)
