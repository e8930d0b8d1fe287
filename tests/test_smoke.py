"""The embedded default end to end: real processes on a fresh SQLite file.

What `python3 dev.py up` starts, minus the install: migrate, the web server and the q
cluster as separate processes sharing the database and the file cache.
"""

import signal
import subprocess
import sys

import pytest
import requests
from django.db import connection

from tests.processes import ROOT, child_env, free_port, wait_for
from tests.processes import start as start_process
from tests.processes import stop as stop_processes

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="exercises the embedded SQLite default"
)


@pytest.fixture
def deployment(tmp_path):
    env = child_env(
        tmp_path,
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
        # A file, not a pipe nobody reads: a busy process would block once it filled.
        log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115  (closed on exit)
        processes[name] = start_process(env, *args, stderr=log)
        return processes[name]

    def stop(name):
        process = processes.pop(name)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)

    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")
    yield manage, start, stop
    stop_processes(processes.values())


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
