"""A real sandbox whose Airflow connections (``AIRFLOW_CONN_*``) are set in this process while it runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hub_sandbox import Sandbox


@contextmanager
def sandbox_in_environ(directory: Path, **start: Any) -> Iterator[Sandbox]:
    """``Sandbox.start(directory, **start)``; its connections in ``os.environ`` until it stops, then the
    environment as it was (tests in the same session may use other sandboxes)."""
    box = Sandbox.start(directory, **start)
    env = box.connection_env()
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield box
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        box.stop()
