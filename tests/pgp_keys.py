"""PGP key pairs made for a test with the system's ``gpg`` (not the hub's code), and gpg decryption.

Fast key types (ed25519 signing key, cv25519 encryption subkey): a pair takes a fraction of a second.
Every keyring lives in a private temporary folder whose gpg-agent is stopped before it is removed.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    public_key: str  # armored
    private_key: str  # armored
    passphrase: str | None
    fingerprint: str


@contextlib.contextmanager
def gpg_home() -> Iterator[Path]:
    home = Path(tempfile.mkdtemp(prefix="test-pgp-"))
    # gpg-agent calibrates its key-protection hashing to the machine; on a busy test machine that is
    # seconds per private-key operation. Test keys need no such cost.
    (home / "gpg-agent.conf").write_text("s2k-count 65536\n")
    try:
        yield home
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, check=False)
        shutil.rmtree(home, ignore_errors=True)


def _gpg(home: Path, *args: str, stdin: bytes | None = None) -> bytes:
    done = subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--yes",
            "--pinentry-mode",
            "loopback",
            "--s2k-count",
            "65536",
            *args,
        ],
        input=stdin,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def generate_keypair(name: str, passphrase: str | None = None) -> KeyPair:
    with gpg_home() as home:
        protection = f"Passphrase: {passphrase}" if passphrase else "%no-protection"
        params = (
            "Key-Type: EDDSA\nKey-Curve: ed25519\nSubkey-Type: ECDH\nSubkey-Curve: cv25519\n"
            f"Name-Real: {name}\nName-Email: {name.lower().replace(' ', '.')}@example.invalid\n"
            f"Expire-Date: 0\n{protection}\n%commit\n"
        )
        _gpg(home, "--gen-key", stdin=params.encode())
        listing = _gpg(home, "--with-colons", "--list-secret-keys").decode()
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        secret_args = ("--passphrase", passphrase) if passphrase else ()
        return KeyPair(
            public_key=_gpg(home, "--armor", "--export", fingerprint).decode(),
            private_key=_gpg(home, *secret_args, "--armor", "--export-secret-keys", fingerprint).decode(),
            passphrase=passphrase,
            fingerprint=fingerprint,
        )


def gpg_decrypt(ciphertext: bytes, keys: KeyPair) -> bytes:
    """Decrypt with the gpg binary directly: an independent check of what the hub encrypted."""
    with gpg_home() as home:
        secret_args = ("--passphrase", keys.passphrase) if keys.passphrase else ()
        _gpg(home, *secret_args, "--import", stdin=keys.private_key.encode())
        source = home / "in.pgp"
        source.write_bytes(ciphertext)
        return _gpg(home, *secret_args, "--decrypt", str(source))


def gpg_encrypt(plaintext: bytes, keys: KeyPair) -> bytes:
    """Encrypt to ``keys`` with the gpg binary: what a vendor would send the hub."""
    with gpg_home() as home:
        _gpg(home, "--import", stdin=keys.public_key.encode())
        return _gpg(
            home, "--trust-model", "always", "--encrypt", "--recipient", keys.fingerprint, stdin=plaintext
        )
