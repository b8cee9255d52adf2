"""The sandbox PlanSource and PGP census files: decrypted with its private key when it has one (see
tests/e2e/test_census_pgp.py for a full export), refused with a clear error when it has none or the file
is not for its key."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from hub_sandbox import Sandbox
from tests.pgp_keys import KeyPair, generate_keypair, gpg_encrypt

CENSUS = (
    b"employee_number,first_name,last_name,ssn,birthdate\n"
    b"E000001,Omar,Williams,108010786,1965-08-30\n"
    b"E000002,James,,116011571,2004-06-03\n"
)


def _import_of(sandbox: Sandbox, name: str, timeout: float = 10.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        imports = requests.get(f"{sandbox.plansource_url}/sandbox/census_imports", timeout=5).json()["data"]
        found = [i for i in imports if i["file_name"] == name]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"{name} was not picked up")


def _drop(sandbox: Sandbox, name: str, content: bytes) -> None:
    # Written under a temporary name and renamed, as an SFTP client does (the server polls the folder).
    inbound = sandbox.sftp_root / "inbound"
    (inbound / f".{name}.part").write_bytes(content)
    (inbound / f".{name}.part").rename(inbound / name)


@pytest.fixture(scope="module")
def plansource_keys() -> KeyPair:
    return generate_keypair("PlanSource Sandbox")


@pytest.fixture(scope="module")
def keyed_sandbox(tmp_path_factory: pytest.TempPathFactory, plansource_keys: KeyPair) -> Iterator[Sandbox]:
    with Sandbox.start(
        tmp_path_factory.mktemp("pgp-sandbox"), employees=10, pgp_private_key=plansource_keys.private_key
    ) as sb:
        yield sb


def test_an_encrypted_census_is_decrypted_and_ingested(
    keyed_sandbox: Sandbox, plansource_keys: KeyPair
) -> None:
    _drop(keyed_sandbox, "census_pgp.csv.pgp", gpg_encrypt(CENSUS, plansource_keys))
    found = _import_of(keyed_sandbox, "census_pgp.csv.pgp")
    assert (found["rows"], found["accepted"], found["error"]) == (2, 1, None)
    assert (keyed_sandbox.sftp_root / "inbound" / "processed" / "census_pgp.csv.pgp").exists()


def test_a_census_for_another_key_is_refused(keyed_sandbox: Sandbox) -> None:
    someone_else = generate_keypair("Someone Else")
    _drop(keyed_sandbox, "census_other.csv.pgp", gpg_encrypt(CENSUS, someone_else))
    found = _import_of(keyed_sandbox, "census_other.csv.pgp")
    assert found["rows"] == 0 and "does not decrypt" in str(found["error"])


def test_without_a_key_an_encrypted_census_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    keys = generate_keypair("PlanSource Sandbox")
    _drop(sandbox, "census_nokey.csv.pgp", gpg_encrypt(CENSUS, keys))
    found = _import_of(sandbox, "census_nokey.csv.pgp")
    assert found["rows"] == 0 and "without a PGP private key" in str(found["error"])
    assert not (sandbox.paths.pgp_home).exists()
