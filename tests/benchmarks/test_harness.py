"""The benchmark harness measures the program it runs, not itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks._harness import _HighWater

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")

# Holds about 60 MiB of its own, touched page by page, for a moment.
CHILD = "import time; b = bytearray(60 * 2**20); b[::4096] = b'x' * len(b[::4096]); time.sleep(0.3)"


def test_a_child_peak_is_its_own_not_the_memory_of_the_process_that_started_it() -> None:
    # The parent holds far more than the child ever will: wait4's ru_maxrss reports the parent's high
    # water for a vfork-started child, the figure the harness must not take.
    ballast = bytearray(400 * 2**20)
    ballast[::4096] = b"x" * len(ballast[::4096])
    proc = subprocess.Popen([sys.executable, "-c", CHILD])
    watch = _HighWater(proc.pid)
    _, _, usage = os.wait4(proc.pid, 0)
    peak = watch.stop(fallback_kib=usage.ru_maxrss)
    assert 60 <= peak < 200, peak
    del ballast
