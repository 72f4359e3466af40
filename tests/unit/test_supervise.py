"""Stopping a supervised server stops every process it started, as `churn serve` relies on."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

# A stand-in for `bentoml serve`: it starts a worker in a process group of its own (as BentoML's
# workers are) and stops it on SIGTERM, unless told to ignore SIGTERM.
SERVER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    open(sys.argv[1], "w").write(f"{os.getpid()} {worker.pid}")
    def stop(*_):
        worker.terminate(); worker.wait(); sys.exit(0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN if sys.argv[2] == "stubborn" else stop)
    while True:
        time.sleep(0.1)
    """
)


@pytest.fixture(autouse=True)
def _reap():
    """Whatever a failed test leaves running is killed, so no stand-in server outlives the run."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    for process in psutil.Process().children(recursive=True):
        if process.pid not in before:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _supervisor(tmp_path: Path, mode: str = "polite") -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "server.py").write_text(SERVER)
    pids = tmp_path / "pids"
    code = (
        "import os, sys; from churn.supervise import run_supervised; "
        f"sys.exit(run_supervised([sys.executable, {str(tmp_path / 'server.py')!r}, {str(pids)!r}, {mode!r}], "
        "dict(os.environ), grace_seconds=2))"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 30
    while not (pids.exists() and pids.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return supervisor, [int(p) for p in pids.read_text().split()]


def _gone(pids: list[int], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_supervised__a_stop_signal_to_the_supervisor_ends_the_whole_tree(tmp_path, signum):
    supervisor, pids = _supervisor(tmp_path)
    os.kill(supervisor.pid, signum)  # exactly that process id, as a supervisor or a runtime does
    assert supervisor.wait(15) == 0
    assert _gone(pids), "no process of the server remains"


def test_run_supervised__a_server_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    supervisor, pids = _supervisor(tmp_path, "stubborn")
    os.kill(supervisor.pid, signal.SIGTERM)
    supervisor.wait(15)
    assert _gone(pids)


def test_run_supervised__killing_the_supervisor_outright_still_stops_the_server(tmp_path):
    supervisor, pids = _supervisor(tmp_path)
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(15)
    assert _gone(pids), "the server got SIGTERM from the kernel and stopped its worker"
