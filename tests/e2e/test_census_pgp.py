"""A full HCM Demographic Export with the ``plansource_pgp`` connection set: the census file that lands on
the sandbox's SFTP is PGP (never plain text), and decrypts with PlanSource's private key to exactly the
census the run staged. The sandbox PlanSource holds that private key and ingests the file, as the real
one would."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import _remember_ssns, run_dag
from tests.pgp_keys import KeyPair, generate_keypair, gpg_decrypt

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "plansource_hcm_demographic_export"


@pytest.fixture
def plansource_keys() -> KeyPair:
    return generate_keypair("PlanSource Sandbox")  # the sandbox's key: no passphrase


@pytest.fixture
def pgp_sandbox(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, plansource_keys: KeyPair
) -> Iterator[Any]:
    from hub_sandbox import Sandbox

    box = Sandbox.start(
        tmp_path_factory.mktemp("pgp-sandbox"),
        employees=200,
        seed=42,
        pgp_private_key=plansource_keys.private_key,
    )
    try:
        for name, value in box.connection_env().items():
            monkeypatch.setenv(name, value)
        # PlanSource's public key, as an operator would set it: a connection, nothing in code.
        monkeypatch.setenv(
            "AIRFLOW_CONN_PLANSOURCE_PGP",
            json.dumps({"conn_type": "generic", "extra": {"public_key": plansource_keys.public_key}}),
        )
        _remember_ssns(box.hcm_db_path, box.plansource_state_path, box.recordkeeper_db_path)
        yield box
    finally:
        box.stop()


def _census_imports(sandbox: Any, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        imports = requests.get(f"{sandbox.plansource_url}/sandbox/census_imports", timeout=10).json()["data"]
        if imports:
            return imports
        time.sleep(0.3)
    return []


def test_census_arrives_pgp_encrypted_and_decrypts_to_the_staged_census(
    pgp_sandbox: Any, plansource_keys: KeyPair
) -> None:
    from benefits_hub.operators.stages import RUN_MANIFEST
    from benefits_hub.staging import StagingArea

    outcome = run_dag(DAG_ID, {"delta": False})
    assert outcome.task_states["deliver"] == "success"
    manifest = StagingArea(DAG_ID, outcome.run_id).read_json(RUN_MANIFEST)
    remote = manifest["stages"]["deliver"]["details"]["census_file"]
    assert remote.startswith("inbound/census_") and remote.endswith(".csv.pgp")
    staged_census = Path(manifest["stages"]["transform"]["files"]["census"]["path"].removeprefix("file://"))
    plaintext = staged_census.read_bytes()
    assert plaintext.startswith(b"employee_number,") and plaintext.count(b"\n") > 100

    # PlanSource (the sandbox) decrypted it with its private key and took every row.
    [imported] = _census_imports(pgp_sandbox)
    assert imported["file_name"] == Path(remote).name
    assert imported["error"] is None
    assert imported["rows"] == imported["accepted"] == outcome.summary["employees_processed"]

    # What crossed the wire: an OpenPGP message, no trace of the CSV, no temporary file left.
    inbound = pgp_sandbox.sftp_root / "inbound"
    [delivered] = list((inbound / "processed").glob("census_*"))
    ciphertext = delivered.read_bytes()
    assert ciphertext[0] & 0x80, "not an OpenPGP packet"
    assert b"employee_number" not in ciphertext and plaintext[:200] not in ciphertext
    first_row = plaintext.splitlines()[1]
    assert first_row not in ciphertext
    assert not [p for p in inbound.iterdir() if p.is_file()]
    # Decrypted independently (the gpg binary, the test's copy of PlanSource's key): the same census.
    assert gpg_decrypt(ciphertext, plansource_keys) == plaintext
