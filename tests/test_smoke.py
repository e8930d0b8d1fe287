"""The embedded default end to end: real processes on a fresh SQLite file.

What `python3 dev.py up` starts, minus the install: migrate, the web server and the q
cluster as separate processes sharing the database and the file cache.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="exercises the embedded SQLite default"
)


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


@pytest.fixture
def deployment(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "REDIS_URL", "DJANGO_"))
    }
    env.update(
        STAGEBOARD_VAR_DIR=str(tmp_path),
        STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"),
        DJANGO_SECRET_KEY="smoke-test-secret-key",
        Q_WORKERS="1",
        Q_SAVE_LIMIT="10",  # the default keeps no successes; this test reads one back
    )
    processes: dict[str, subprocess.Popen] = {}

    def manage(*args, **kwargs):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            **kwargs,
        )

    def start(name, *args):
        processes[name] = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            # A file, not a pipe nobody reads: a busy process would block once it filled.
            stderr=open(tmp_path / f"{name}.log", "w"),  # noqa: SIM115  (closed on exit)
            text=True,
            start_new_session=True,  # its own process group: its children go with it
        )
        return processes[name]

    def stop(name):
        process = processes.pop(name)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")
    yield manage, start, stop
    # A q cluster's pusher, monitor and workers are its children: killing only its main
    # process would leave them running. Ask the group to stop, then make sure.
    # A group whose processes all exited is gone: nothing to signal.
    for process in processes.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=15)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_service_is_healthy_once_its_cluster_runs(deployment):
    manage, start, stop = deployment
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    start("web", "runserver", f"127.0.0.1:{port}", "--noreload")

    def health():
        try:
            return requests.get(f"{base}/healthz", timeout=2)
        except requests.ConnectionError:
            return None

    wait_for(lambda: health() is not None, 30, "the web server")
    before = health()
    assert before.status_code == 503
    assert before.json()["checks"]["cluster"]["ok"] is False

    start("cluster", "qcluster")
    wait_for(lambda: (h := health()) is not None and h.status_code == 200, 60, "a healthy /healthz")

    # Work enqueued by another process reaches the cluster through the ORM broker.
    manage(
        "shell",
        "-v",
        "0",
        "-c",
        "from django_q.tasks import async_task; async_task('math.floor', 2.5)",
    )
    done = (
        "from django_q.models import Success; "
        "print(list(Success.objects.values_list('result', flat=True)))"
    )
    wait_for(
        lambda: manage("shell", "-v", "0", "-c", done).stdout.strip() == "[2]",
        30,
        "the task to run",
    )

    # The admin answers, with its static files served by WhiteNoise.
    login = requests.get(f"{base}/admin/login/", timeout=5)
    assert login.status_code == 200
    assert requests.get(f"{base}/static/admin/css/base.css", timeout=5).status_code == 200

    stop("cluster")
    wait_for(lambda: health().status_code == 503, 30, "/healthz to notice the stopped cluster")
