"""Point the hub's Airflow connections at the compose file's sandbox.

Run once by the ``sandbox-connections`` service, after ``airflow-init`` and once the sandbox is healthy:
it reads the sandbox's own ``sandbox.json`` (demo credentials, the SFTP host key) from the shared
``/sandbox`` volume and stores the five connections in the metadata database, with the host and ports
the other containers reach the sandbox at (its ``sandbox-gateway``). Pointing the hub at the real
vendors replaces these connections; nothing else changes (docs/production.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hub_sandbox.connections import connections

# What sandbox-gateway listens on, in the sandbox's network namespace (docker-compose.yaml).
GATEWAY_PORTS = {"http_port": 8000, "sftp_port": 2222, "ijoin_port": 8001}


def main() -> int:
    directory = Path(os.environ.get("SANDBOX_DIR", "/sandbox"))
    info = json.loads((directory / "sandbox.json").read_text())
    info.update(host=os.environ.get("SANDBOX_HOST", "sandbox"), **GATEWAY_PORTS)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
        json.dump(connections(info), handle)
        handle.flush()
        command = [sys.executable, "-m", "airflow", "connections", "import", "--overwrite", handle.name]
        result = subprocess.run(command, check=False)  # noqa: S603 - this image's own airflow CLI
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
