"""``[core] hostname_callable`` for the distributed test: each Celery worker names itself.

The test's two workers run on one machine, so the real host name cannot tell them apart; each gets
``HUB_WORKER_HOSTNAME`` in its environment and every task it runs records that as
``TaskInstance.hostname``.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    return os.environ.get("HUB_WORKER_HOSTNAME") or socket.getfqdn()
