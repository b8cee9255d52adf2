"""TLS verification stays on for every vendor API: against a real local HTTPS server with a self-signed
certificate, the hooks refuse to talk (nothing, not even the OAuth client secret, is sent) unless the
connection names a CA bundle that vouches for it; a connection that turns verification off is refused;
and no code of the hub switches verification off."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from benefits_hub.hooks.ijoin import IJoinHook
from benefits_hub.hooks.plansource import PlanSourceHook

REPO = Path(__file__).resolve().parents[2]


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key (no public CA vouches for it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vendor.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "vendor.crt", directory / "vendor.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class VendorServer:
    port: int
    ca_bundle: Path
    requests_seen: list[str] = field(default_factory=list)


class _Vendor(BaseHTTPRequestHandler):
    """Just enough of PlanSource and iJoin: a token, a subscriber, the plan list."""

    def _answer(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.server.seen.append(f"POST {self.path}")  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._answer({"access_token": "tls-test-token", "token_type": "bearer", "expires_in": 300})

    def do_GET(self) -> None:
        self.server.seen.append(f"GET {self.path}")  # type: ignore[attr-defined]
        data: Any = {"plans": []} if self.path.startswith("/api/v1/plans") else {"employee_number": "E000001"}
        self._answer({"status": "success", "errors": [], "data": data})

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def vendor_https(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VendorServer]:
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Vendor)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield VendorServer(server.server_address[1], cert, server.seen)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _connection(monkeypatch: pytest.MonkeyPatch, conn_id: str, vendor: VendorServer, **extra: Any) -> None:
    connection = {
        "conn_type": "http",
        "host": "127.0.0.1",
        "port": vendor.port,
        "schema": "https",
        "login": "tls-test-client",
        "password": "tls-test-secret",
        **({"extra": extra} if extra else {}),
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))


@pytest.fixture(autouse=True)
def no_ambient_ca_bundle(monkeypatch: pytest.MonkeyPatch) -> None:
    # requests would also trust a bundle named in the environment; these tests are about the connection.
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_a_self_signed_vendor_is_refused_before_anything_is_sent(
    monkeypatch: pytest.MonkeyPatch, vendor_https: VendorServer
) -> None:
    _connection(monkeypatch, "tls_plansource", vendor_https)
    _connection(monkeypatch, "tls_ijoin", vendor_https)
    before = len(vendor_https.requests_seen)
    with pytest.raises(requests.exceptions.SSLError):
        PlanSourceHook("tls_plansource", request_attempts=1).get_subscriber("E000001")
    with pytest.raises(requests.exceptions.SSLError):
        IJoinHook("tls_ijoin", request_attempts=1).list_plans()
    # The handshake failed: no request, so neither the client secret nor the API key left the hub.
    assert vendor_https.requests_seen[before:] == []


def test_the_ca_bundle_named_in_the_connection_is_trusted(
    monkeypatch: pytest.MonkeyPatch, vendor_https: VendorServer
) -> None:
    _connection(monkeypatch, "tls_plansource", vendor_https, verify=str(vendor_https.ca_bundle))
    _connection(monkeypatch, "tls_ijoin", vendor_https, verify=str(vendor_https.ca_bundle))
    before = len(vendor_https.requests_seen)
    assert PlanSourceHook("tls_plansource", request_attempts=1).get_subscriber("E000001") == {
        "employee_number": "E000001"
    }
    assert IJoinHook("tls_ijoin", request_attempts=1).list_plans() == []
    assert vendor_https.requests_seen[before:] == [
        "POST /oauth/v2/token",
        "GET /admin/v2/subscriber/E000001?is_custom_id=true",
        "GET /api/v1/plans",
    ]


@pytest.mark.parametrize("verify", [False, "false", "0", ""])
def test_a_connection_that_turns_verification_off_is_refused(
    monkeypatch: pytest.MonkeyPatch, vendor_https: VendorServer, verify: object
) -> None:
    _connection(monkeypatch, "tls_plansource", vendor_https, verify=verify)
    _connection(monkeypatch, "tls_ijoin", vendor_https, verify=verify)
    before = len(vendor_https.requests_seen)
    with pytest.raises(ValueError, match="turns TLS certificate verification off"):
        PlanSourceHook("tls_plansource", request_attempts=1).get_subscriber("E000001")
    with pytest.raises(ValueError, match="turns TLS certificate verification off"):
        IJoinHook("tls_ijoin", request_attempts=1).list_plans()
    assert vendor_https.requests_seen[before:] == []


# Ways Python code turns certificate checking off.
_VERIFICATION_OFF = re.compile(
    r"verify(?:_ssl)?\s*=\s*False|[\"']verify(?:_ssl)?[\"']\s*:\s*(?:False|[\"']false[\"'])|CERT_NONE"
    r"|check_hostname\s*=\s*False|_create_unverified_context|disable_warnings\("
)


def test_no_code_of_the_hub_turns_verification_off() -> None:
    sources = [p for top in ("plugins", "dags", "include") for p in (REPO / top).rglob("*.py")]
    assert len(sources) > 20
    offenders = [
        f"{p.relative_to(REPO)}:{n}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if _VERIFICATION_OFF.search(line)
    ]
    assert offenders == []
    assert _VERIFICATION_OFF.search('session.request("GET", url, verify=False)')  # the check can fail
