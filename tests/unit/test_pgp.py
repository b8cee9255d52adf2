"""PGP with keys from a connection: real gpg round trips with keys generated here (ed25519/cv25519)."""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from benefits_hub.pgp import PgpError, VendorPgp
from tests.pgp_keys import KeyPair, generate_keypair, gpg_decrypt, gpg_encrypt

CENSUS = b"employee_number,first_name,last_name,ssn,birthdate\nE000001,Ada,Lovelace,180017851,1815-12-10\n"


@pytest.fixture(scope="module")
def vendor() -> KeyPair:
    return generate_keypair("Vendor Test")


@pytest.fixture(scope="module")
def hub() -> KeyPair:
    return generate_keypair("Hub Test", passphrase="correct horse battery staple")


@pytest.fixture(autouse=True)
def private_tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every keyring the hub makes goes here, so the test can see that none is left behind.

    A short path of its own, not pytest's ``tmp_path``: gpg-agent's socket lives in the keyring's
    directory, and a Unix socket path longer than 107 bytes (a parallel worker's tmp_path nests deeper)
    keeps the agent from starting."""
    directory = Path(tempfile.mkdtemp(prefix="pgp-", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_outbound_file_decrypts_with_the_vendors_key_only(
    vendor: KeyPair, hub: KeyPair, private_tmp: Path
) -> None:
    pgp = VendorPgp("plansource_pgp", public_key=vendor.public_key)
    with pgp.encrypted(io.BytesIO(CENSUS)) as (ciphertext, fingerprint):
        sealed = ciphertext.read()
    assert fingerprint == vendor.fingerprint
    assert b"Lovelace" not in sealed and b"180017851" not in sealed
    assert gpg_decrypt(sealed, vendor) == CENSUS  # decrypted by gpg itself, not by the hub's code
    with pytest.raises(AssertionError):
        gpg_decrypt(sealed, hub)  # the wrong private key cannot open it
    assert list(private_tmp.iterdir()) == []  # the private keyring and the ciphertext are gone


def test_inbound_file_decrypts_with_the_hubs_key_and_passphrase(hub: KeyPair, private_tmp: Path) -> None:
    sealed = gpg_encrypt(CENSUS, hub)  # what a vendor would send the hub
    pgp = VendorPgp("plansource_pgp", private_key=hub.private_key, passphrase=hub.passphrase)
    with pgp.decrypted(io.BytesIO(sealed)) as plaintext:
        assert plaintext.read() == CENSUS
    assert list(private_tmp.iterdir()) == []


def test_a_wrong_passphrase_is_refused_and_leaves_nothing(hub: KeyPair, private_tmp: Path) -> None:
    sealed = gpg_encrypt(CENSUS, hub)
    pgp = VendorPgp("plansource_pgp", private_key=hub.private_key, passphrase="not the passphrase")
    with pytest.raises(PgpError) as refused, pgp.decrypted(io.BytesIO(sealed)):
        pass
    assert "plansource_pgp" in str(refused.value) and "not the passphrase" not in repr(pgp)
    assert "not the passphrase" not in str(refused.value)
    assert list(private_tmp.iterdir()) == []


def test_a_connection_without_the_key_it_needs_is_refused(vendor: KeyPair) -> None:
    with pytest.raises(PgpError, match="no public_key"), VendorPgp("x").encrypted(io.BytesIO(b"a")):
        pass
    with pytest.raises(PgpError, match="no private_key"), VendorPgp("x").decrypted(io.BytesIO(b"a")):
        pass
    broken = VendorPgp("x", public_key="-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n")
    with pytest.raises(PgpError, match="exactly one armored key"), broken.encrypted(io.BytesIO(b"a")):
        pass


class _LargeFile(io.RawIOBase):
    """``size`` random bytes made as they are read (gpg cannot compress them): never in memory at once."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def test_large_files_are_streamed_not_held_in_memory(vendor: KeyPair) -> None:
    size = 32 * 1024 * 1024
    pgp = VendorPgp("plansource_pgp", public_key=vendor.public_key)
    tracemalloc.start()
    try:
        with pgp.encrypted(io.BufferedReader(_LargeFile(size))) as (ciphertext, _):
            sealed_size = 0
            while chunk := ciphertext.read(1 << 20):
                sealed_size += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sealed_size > size  # it really went through gpg, whole
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte file"


def test_from_connection(monkeypatch: pytest.MonkeyPatch, vendor: KeyPair, hub: KeyPair) -> None:
    assert VendorPgp.from_connection("absent_pgp") is None  # no connection: files go unencrypted
    extra = {"public_key": vendor.public_key, "private_key": hub.private_key}
    monkeypatch.setenv(
        "AIRFLOW_CONN_SOME_VENDOR_PGP",
        json.dumps({"conn_type": "generic", "password": hub.passphrase, "extra": extra}),
    )
    pgp = VendorPgp.from_connection("some_vendor_pgp")
    assert pgp is not None and pgp.encrypts and pgp.decrypts and pgp.passphrase == hub.passphrase
    assert hub.passphrase not in repr(pgp) and "PRIVATE" not in repr(pgp)
    monkeypatch.setenv(
        "AIRFLOW_CONN_SOME_VENDOR_PGP",
        json.dumps({"conn_type": "generic", "extra": {**extra, "encrypt": "false"}}),
    )
    off = VendorPgp.from_connection("some_vendor_pgp")
    assert off is not None and not off.encrypts and off.decrypts
