"""One real sandbox process (200 employees, loopback, free ports) shared by the sandbox tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub_sandbox import Sandbox
from hub_sandbox.client import SandboxClient


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with Sandbox.start(tmp_path_factory.mktemp("sandbox"), employees=200, seed=42) as sb:
        yield sb


@pytest.fixture
def api(sandbox: Sandbox) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox)
    yield client
    client.reset()  # leave the shared server as we found it
