"""The census upload against a real OpenSSH ``sshd`` (not the sandbox's paramiko server): a host key that
does not match is refused at once, with no second connection; with the right key the file arrives under
its final name only when whole."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import run_dag
from tests.e2e.openssh import OpenSshServer, openssh_server

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("clean_hub_state")]
DAG_ID = "plansource_hcm_demographic_export"


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenSshServer]:
    with openssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


def connections(server: OpenSshServer) -> int:
    """How many SSH connections the server has accepted so far (its own log)."""
    return server.log.read_text().count("Connection from 127.0.0.1")


def use(monkeypatch: pytest.MonkeyPatch, server: OpenSshServer, host_key: str | None = None) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_PLANSOURCE_SFTP", json.dumps(server.connection(host_key)))


class PausingSource(io.RawIOBase):
    """A file the upload reads from, which stops half-way until the test lets it go on (or fails)."""

    def __init__(self, data: bytes, fail: bool = False) -> None:
        self.data, self.position, self.fail = data, 0, fail
        self.halfway, self.proceed = threading.Event(), threading.Event()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.position >= len(self.data) // 2 and not self.proceed.is_set():
            self.halfway.set()
            assert self.proceed.wait(30)
            if self.fail:
                raise OSError("the staging disk went away mid-upload")
        chunk = self.data[self.position : self.position + min(len(buffer), 32_768)]
        buffer[: len(chunk)] = chunk
        self.position += len(chunk)
        return len(chunk)


def upload_in_background(source: PausingSource, remote: str) -> tuple[threading.Thread, list[Any]]:
    from benefits_hub.hooks.sftp import VendorSftpHook

    outcome: list[Any] = []

    def upload() -> None:
        try:
            outcome.append(VendorSftpHook(ssh_conn_id="plansource_sftp").upload_atomic(source, remote))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=upload)
    thread.start()
    return thread, outcome


def test_the_file_appears_under_its_name_only_when_whole(
    sshd: OpenSshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, sshd)
    data = b"".join(b"E%07d,Ada,Lovelace,Springfield\n" % n for n in range(100_000))
    source = PausingSource(data)
    thread, outcome = upload_in_background(source, "inbound/census_atomic.csv")

    assert source.halfway.wait(30), outcome
    inbound = sshd.root / "inbound"
    assert not (inbound / "census_atomic.csv").exists()  # half a file is never visible by its name
    [partial] = [p for p in inbound.iterdir() if p.name.startswith(".census_atomic.csv.")]
    assert partial.name.endswith(".part")
    source.proceed.set()
    thread.join(60)

    assert outcome == [len(data)]
    assert (inbound / "census_atomic.csv").read_bytes() == data
    assert not [p for p in inbound.iterdir() if p.name.endswith(".part")]


def test_an_upload_cut_off_midway_leaves_nothing_under_the_final_name(
    sshd: OpenSshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, sshd)
    source = PausingSource(b"x" * 2_000_000, fail=True)
    thread, outcome = upload_in_background(source, "inbound/census_cut.csv")
    assert source.halfway.wait(30), outcome
    source.proceed.set()
    thread.join(60)

    assert len(outcome) == 1 and isinstance(outcome[0], OSError)
    inbound = sshd.root / "inbound"
    assert not (inbound / "census_cut.csv").exists()
    assert not [p for p in inbound.iterdir() if p.name.startswith(".census_cut.csv.")]


def test_a_wrong_host_key_fails_the_run_within_seconds_with_one_connection_and_no_file(
    sandbox: Any, sshd: OpenSshServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.e2e.openssh import _keygen

    someone_else = _keygen(tmp_path / "other_host")  # a valid key, not this server's
    use(monkeypatch, sshd, host_key=someone_else)
    before = connections(sshd)
    started = time.monotonic()

    outcome = run_dag(DAG_ID, {"delta": False})

    assert time.monotonic() - started < 60
    assert connections(sshd) - before == 1  # refused at the first connection: no retry
    assert outcome.task_states["deliver"] == "failed"
    reason = outcome.summary["failure_reason"]
    assert "plansource_sftp" in reason and "host_key extra" in reason and "ssh-keyscan" in reason
    assert "Traceback" not in reason and "paramiko" not in reason.lower()
    assert not list((sshd.root / "inbound").glob("census_2*"))


def test_with_the_right_host_key_the_census_arrives_whole(
    sandbox: Any, sshd: OpenSshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    use(monkeypatch, sshd)

    outcome = run_dag(DAG_ID, {"delta": False})

    assert outcome.task_states["deliver"] == "success", outcome.summary
    [census] = list((sshd.root / "inbound").glob("census_2*.csv"))
    [staged] = [f for f in outcome.summary["output_files"] if f.endswith("/census.csv")]
    assert census.read_bytes() == Path(staged.removeprefix("file://")).read_bytes()
    assert census.read_bytes().startswith(b"employee_number,")
    assert not [p for p in (sshd.root / "inbound").iterdir() if p.name.endswith(".part")]


def test_an_sftp_server_refusing_connections_fails_the_deliver_within_the_bound_in_words(
    sandbox: Any, sshd: OpenSshServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.e2e.test_demographic_export import closed_port

    conn = sshd.connection()
    conn["port"] = port = closed_port()
    monkeypatch.setenv("AIRFLOW_CONN_PLANSOURCE_SFTP", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__BENEFITS_HUB__VENDOR_UNREACHABLE_SECONDS", "3")
    started = time.monotonic()

    outcome = run_dag(DAG_ID, {"delta": False})

    assert time.monotonic() - started < 60
    assert outcome.task_states["deliver"] == "failed"
    reason = outcome.summary["failure_reason"]
    assert f"PlanSource's SFTP server could not be reached at 127.0.0.1:{port}" in reason, reason
    assert "'plansource_sftp'" in reason and "connection refused" in reason
