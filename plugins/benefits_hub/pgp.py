"""PGP for files exchanged with a vendor, with keys from an Airflow connection.

One connection per vendor (``plansource_pgp`` for PlanSource), any connection type, keys armored in
its extras:

- ``public_key``: the **vendor's** public key. Files sent to the vendor are encrypted to it.
- ``private_key``: the **hub's** private key, for files the vendor sends; its passphrase is the
  connection's password.
- ``encrypt``: ``false`` sends files in plain text although a public key is configured (a vendor
  that has not switched on decryption yet).

No connection, or ``encrypt: false``: files go as they are. Airflow masks the ``private_key`` extra and
the password in task logs by their names.

Built on ``python-gnupg`` (it drives the system's ``gpg``). Each operation gets a private, empty
``GNUPGHOME`` (mode 0700) that holds only the keys from the connection, is never the user's keyring,
and is deleted (its ``gpg-agent`` stopped) afterwards. Data is streamed: ``gpg`` reads the source in
chunks and writes its output to a file in that private folder, which the caller reads as a stream; no
whole file is ever held in memory. A decrypted file exists on local disk only inside the private folder
and only while the caller reads it.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ENCRYPTED_SUFFIX = ".pgp"


class PgpError(Exception):
    """A PGP operation failed; the message names the connection and gpg's status, never data."""


def _enabled(value: Any) -> bool:
    return str(value).strip().lower() not in ("false", "0", "no", "off")


@dataclass(frozen=True)
class VendorPgp:
    """What one vendor's PGP connection holds. Build it with :meth:`from_connection`."""

    conn_id: str
    public_key: str | None = None
    private_key: str | None = None
    passphrase: str | None = None
    encrypt: bool = True

    def __repr__(self) -> str:  # never print key material or the passphrase
        return f"VendorPgp(conn_id={self.conn_id!r}, encrypts={self.encrypts}, decrypts={self.decrypts})"

    @classmethod
    def from_connection(cls, conn_id: str) -> VendorPgp | None:
        """The connection's keys, or None when the connection does not exist."""
        from airflow.sdk import BaseHook
        from airflow.sdk.exceptions import AirflowNotFoundException

        try:
            connection = BaseHook.get_connection(conn_id)
        except AirflowNotFoundException:
            return None
        extra = connection.extra_dejson
        return cls(
            conn_id=conn_id,
            public_key=(extra.get("public_key") or "").strip() or None,
            private_key=(extra.get("private_key") or "").strip() or None,
            passphrase=connection.password or None,
            encrypt=_enabled(extra.get("encrypt", True)),
        )

    @property
    def encrypts(self) -> bool:
        """Files sent to this vendor are encrypted."""
        return self.encrypt and self.public_key is not None

    @property
    def decrypts(self) -> bool:
        return self.private_key is not None

    @contextlib.contextmanager
    def encrypted(self, plaintext: IO[bytes]) -> Iterator[tuple[IO[bytes], str]]:
        """``plaintext`` encrypted to the vendor's key: yields (binary ciphertext stream, key fingerprint)."""
        if self.public_key is None:
            raise PgpError(f"PGP connection '{self.conn_id}' has no public_key extra to encrypt with.")
        with _private_keyring() as (gpg, folder):
            fingerprint = _import_one(gpg, self.public_key, self.conn_id, "public_key")
            target = folder / "ciphertext.pgp"
            result = gpg.encrypt_file(
                plaintext, [fingerprint], armor=False, always_trust=True, output=str(target)
            )
            # The key came from the connection, which is the trust decision: no web of trust here.
            if not result.ok or not target.exists():
                raise PgpError(f"PGP encryption with connection '{self.conn_id}' failed: {result.status}")
            with target.open("rb") as ciphertext:
                yield ciphertext, fingerprint

    @contextlib.contextmanager
    def decrypted(self, ciphertext: IO[bytes]) -> Iterator[IO[bytes]]:
        """``ciphertext`` decrypted with the hub's private key: yields a binary plaintext stream."""
        if self.private_key is None:
            raise PgpError(f"PGP connection '{self.conn_id}' has no private_key extra to decrypt with.")
        with _private_keyring() as (gpg, folder):
            _import_one(gpg, self.private_key, self.conn_id, "private_key", passphrase=self.passphrase)
            target = folder / "plaintext"
            result = gpg.decrypt_file(ciphertext, passphrase=self.passphrase or "", output=str(target))
            if not result.ok or not target.exists():
                raise PgpError(f"PGP decryption with connection '{self.conn_id}' failed: {result.status}")
            with target.open("rb") as plaintext:
                yield plaintext


def _import_one(gpg: Any, armored: str, conn_id: str, extra: str, passphrase: str | None = None) -> str:
    result = gpg.import_keys(armored, passphrase=passphrase) if passphrase else gpg.import_keys(armored)
    fingerprints = sorted(set(result.fingerprints))
    if len(fingerprints) != 1:
        raise PgpError(
            f"PGP connection '{conn_id}': the {extra} extra must hold exactly one armored key "
            f"(found {len(fingerprints)})."
        )
    return fingerprints[0]


@contextlib.contextmanager
def _private_keyring() -> Iterator[tuple[Any, Path]]:
    """A throwaway GNUPGHOME (0700, short path: gpg-agent's socket must fit in 108 bytes)."""
    import gnupg

    folder = Path(tempfile.mkdtemp(prefix="hub-pgp-"))
    # The agent re-protects an imported private key for its keyring, with hashing calibrated to take
    # ~0.1 s on an idle machine and seconds on a busy one. This keyring lives for one operation and the
    # passphrase is in this process anyway: the minimum count costs nothing in protection.
    (folder / "gpg-agent.conf").write_text("s2k-count 65536\n")
    try:
        gpg = gnupg.GPG(gnupghome=str(folder))
        gpg.encoding = "utf-8"
        yield gpg, folder
    finally:
        # gpg starts an agent per home for secret keys; it must not outlive the folder.
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(  # noqa: S603 - fixed arguments, our own folder
                ["gpgconf", "--homedir", str(folder), "--kill", "all"],  # noqa: S607 - Debian's gnupg
                capture_output=True,
                timeout=10,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
