"""One small real sandbox (SFTP server, vendor APIs) on loopback for the security tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_sandbox import Sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    box = Sandbox.start(tmp_path_factory.mktemp("security-sandbox"), employees=10)
    saved = {name: os.environ.get(name) for name in box.connection_env()}
    os.environ.update(box.connection_env())
    try:
        yield box
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        box.stop()


@pytest.fixture
def no_known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty home: ~/.ssh/known_hosts would otherwise win over (or add to) the host_key extra."""
    monkeypatch.setenv("HOME", str(tmp_path))
