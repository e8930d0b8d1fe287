"""A real `manage.py qcluster` yields the CPU to the web: its sentinel and the workers it
forks run at Q_NICE, so a burst of webhooks on a shared machine is answered first."""

import os
import subprocess
import sys

import psutil
import pytest

from tests.processes import ROOT, child_env, start, stop, wait_for
from tests.test_smoke import pytestmark  # noqa: F401  (SQLite only, as the smoke test)

MINE = os.getpriority(os.PRIO_PROCESS, 0)


@pytest.fixture
def cluster_nice_values(tmp_path):
    """`run(**settings)` starts a cluster with those settings and returns (the sentinel's
    nice value, its workers') once it has forked its worker."""
    started = []
    env = child_env(tmp_path, DJANGO_SECRET_KEY="priority-test-secret-key", Q_WORKERS="1")
    command = [sys.executable, "manage.py", "migrate", "--noinput"]
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)

    def run(**settings: str) -> tuple[int, list[int]]:
        started.append(start({**env, **settings}, "qcluster"))
        sentinel = psutil.Process(started[-1].pid)
        wait_for(lambda: sentinel.children(), 30, "the cluster to fork its worker")
        return sentinel.nice(), [child.nice() for child in sentinel.children()]

    yield run
    stop(started)


@pytest.mark.skipif(MINE >= 10, reason="the tests already run at nice 10 or more")
def test_the_cluster_and_its_workers_run_at_nice_10(cluster_nice_values):
    assert cluster_nice_values() == (10, [10])


def test_q_nice_0_leaves_the_priority_as_it_was(cluster_nice_values):
    assert cluster_nice_values(Q_NICE="0") == (MINE, [MINE])
