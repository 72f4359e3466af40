"""Long-running commands stop when asked: SIGTERM and SIGINT end the whole process tree.

A process supervisor or a container runtime stops a service by signalling the one process id it
started. `run_supervised` starts a server in its own process group and, on SIGTERM or SIGINT,
passes SIGTERM to that group (the server drains its queues and stops its workers), waits, then
kills every process of the tree that is left (workers run in process groups of their own), after
a grace period at the latest. If this process is killed outright, the kernel sends the server
SIGTERM (Linux's parent-death signal), so nothing is left holding the port.
`stop_on_sigterm` makes the other commands unwind on SIGTERM as on Ctrl-C, so their clean-up (a
Dask cluster's worker processes, a database transaction) runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

import psutil

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the parent dies (Linux only; elsewhere a no-op)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _tree(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).children(recursive=True)
    return []


def run_supervised(command: Sequence[str], env: dict[str, str], grace_seconds: float = 30.0) -> int:
    """Run `command` until it exits or this process is told to stop; returns its exit code
    (0 when it stopped cleanly on request)."""
    process = subprocess.Popen(list(command), env=env, start_new_session=True, preexec_fn=_die_with_parent)
    stopping = False
    deadline = float("inf")
    descendants: list[psutil.Process] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping, deadline, descendants
        stopping, deadline = True, time.monotonic() + grace_seconds
        descendants = _tree(process.pid)  # before they are re-parented and out of sight
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:  # short waits: a signal handled during a wait must be acted on
                code = process.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() > deadline:  # stopping, and the grace period is over
                    process.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _, alive = psutil.wait_procs(
            descendants + _tree(process.pid), timeout=grace_seconds if stopping else 0
        )
        for leftover in alive:  # nothing of the server outlives it
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
    return 0 if stopping and code in (0, -signal.SIGTERM, 128 + signal.SIGTERM) else code


class Terminated(BaseException):
    """SIGTERM received: unwinds the stack like Ctrl-C does (so `with` blocks and `finally`
    clauses run), past `except Exception` handlers."""


def stop_on_sigterm() -> None:
    """Turn SIGTERM into `Terminated` in the main thread."""

    def terminate(signum: int, _frame: FrameType | None) -> None:
        raise Terminated()

    signal.signal(signal.SIGTERM, terminate)
