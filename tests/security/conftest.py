"""One small real sandbox (SFTP server, vendor APIs) on loopback for the security tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_sandbox import Sandbox
from tests.sandbox_env import sandbox_in_environ


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with sandbox_in_environ(tmp_path_factory.mktemp("security-sandbox"), employees=10) as box:
        yield box


@pytest.fixture
def no_known_hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty home: ~/.ssh/known_hosts would otherwise win over (or add to) the host_key extra."""
    monkeypatch.setenv("HOME", str(tmp_path))
