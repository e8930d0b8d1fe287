"""Real Stageboard processes for tests: a clean environment, start, wait, stop.

Each child starts in its own process group, because a q cluster's pusher, monitor and
workers are its children: stopping only its main process would leave them running.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
# What a developer's shell or CI may carry that would point a child at another database,
# cache, Plane or set of flags than the test's own.
NOT_INHERITED = ("DATABASE_URL", "REDIS_URL", "DJANGO_", "ORCH_", "PLANE_")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def child_connected_to(process: subprocess.Popen, port: int) -> int | None:
    """The pid of a descendant of `process` with a TCP connection open to `port` on this
    machine (say, the q worker caught in a request there), or None."""
    for child in psutil.Process(process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            if any(c.raddr and c.raddr.port == port for c in child.net_connections("tcp")):
                return child.pid
    return None


def child_env(var_dir: Path, **settings: str) -> dict[str, str]:
    """This environment less NOT_INHERITED, with its own files in `var_dir` and no .env."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(NOT_INHERITED)}
    env.update(
        STAGEBOARD_VAR_DIR=str(var_dir),
        STAGEBOARD_ENV_FILE=str(var_dir / "missing.env"),
        **settings,
    )
    return env


def start(env: dict[str, str], *args: str, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """`manage.py ARGS` in the background, in a process group of its own."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )


def stop(processes) -> None:
    """Ask each process group to stop, then make sure (a group that is gone is fine)."""
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def service(env: dict[str, str], port: int) -> Iterator[str]:
    """The web server and a q cluster, as `dev.py up` runs them; yields the base URL once
    /healthz answers 200, and stops both on the way out."""
    base = f"http://127.0.0.1:{port}"
    processes = [
        start(env, "runserver", f"127.0.0.1:{port}", "--noreload"),
        start(env, "qcluster"),
    ]

    def healthy() -> bool:
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, 60, "the service")
        yield base
    finally:
        stop(processes)
