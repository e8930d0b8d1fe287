"""Two q clusters on one PostgreSQL database: no window judged or rolled back twice, no
deploy told twice, no project swept by two runs at once.

Two real `manage.py qcluster` processes share the test's database (and, as two machines
would share Redis, one cache), the Plane stand-in and a loopback health endpoint. Deploys
finish through the API, so windows open; some repos answer 503 (DEGRADED, rollback hook),
some 200 (HEALTHY at close), and extra monitor ticks are queued with them. Once that work is
done, full and incremental reconciler sweeps are queued at one moment. Both clusters take
ticks and sweeps. What each did is read back from its JSON log.

The children sign and check queued work with DJANGO_SECRET_KEY, and their pusher deletes
work signed with another key: this process must sign with theirs, or they do nothing.
"""

import json
import sys
from collections import Counter
from datetime import datetime
from urllib.parse import quote

import pytest
from django.db import connection
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from monitoring.models import MonitoredRepo, MonitorWindow
from pipeline import switchboard
from pipeline.models import Task
from plane_integration.models import BoardStatus, DeployComment, ReconcileRepair, ReconcileRun
from plane_integration.schedules import SWEEP
from tests.conftest import PLANE_KEY
from tests.processes import child_env, start, stop, wait_for
from tests.simulation.loopback import HealthEndpoint

SECRET_KEY = "clusters-test-secret-key"
FAILING, HEALTHY = ("shop-1", "shop-2", "shop-3"), ("blog-1", "blog-2", "blog-3")
# Each rollback hook says which deploy it rolled back.
HOOK = "import os, sys; open(sys.argv[1], 'a').write(os.environ['STAGEBOARD_WORK_ITEM'] + '\\n')"
TICKS = 4
SWEEPS = 6


def database_url() -> str:
    """The test database pytest-django made, which the children must use too."""
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (
        f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else ""
    )
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def all_told(deploys: int, sweeps: int) -> bool:
    """Every verdict acted on and told, the sweeps finished, the board synced, no work left."""
    return (
        not MonitorWindow.objects.exclude(state="closed", action_state="done").exists()
        and DeployComment.objects.filter(state="sent").count() == deploys
        and ReconcileRun.objects.filter(finished_at__isnull=False).count() == sweeps
        and not any(row.pending for row in BoardStatus.objects.all())
        and not OrmQ.objects.exists()
    )


def log_records(path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a traceback's lines
    return records


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clusters_judge_roll_back_tell_and_sweep_once(
    tmp_path, monkeypatch, settings, plane, plane_project, board_task, api
):
    monkeypatch.setattr(Conf, "SECRET_KEY", SECRET_KEY)  # read once, at django-q2's import
    settings.PLANE_RATE_LIMIT_PER_MINUTE = 6000
    plane.set_rate_limit(6000, 60)  # the rate budget is not what this test is about
    project = str(plane_project.project_id)
    health = HealthEndpoint(silence=1.0).start()
    marker = tmp_path / "rollbacks.txt"
    for repo in FAILING + HEALTHY:
        health.modes[repo] = "failing" if repo in FAILING else "healthy"
        MonitoredRepo.objects.create(
            name=repo,
            health_url=f"{health.url}/{repo}",
            rollback_command=[sys.executable, "-c", HOOK, str(marker)] if repo in FAILING else [],
        )
    switchboard.update(
        "test",
        post_deploy_repos=",".join(FAILING + HEALTHY),
        post_deploy_window_minutes=0.1,
        post_deploy_tick_seconds=0.2,
        post_deploy_fail_threshold=3,
    )
    deploys = {
        repo: board_task(stage="deploy", deploy_phase="deploying", repo=repo, name=repo)
        for repo in FAILING + HEALTHY
    }
    # Work for the sweeps: two pages, two missed "To Analyse" webhooks, one deleted item.
    for n in range(180):
        plane.add_work_item("acme", project, f"filler {n}", state="Todo")
    missed = [plane.add_work_item("acme", project, f"missed {n}", state="To Analyse") for n in "ab"]
    deleted = plane.add_work_item("acme", project, "deleted", state="Todo")
    made = api.post("/api/tasks/", {"work_item_id": deleted, "project_id": project, "title": "x"})
    assert made.status_code == 201, made.content
    plane.delete_work_item(deleted)

    env = child_env(
        tmp_path,  # the test's own cache is tmp_path/cache: one cache for all three
        DATABASE_URL=database_url(),
        DJANGO_SECRET_KEY=SECRET_KEY,
        LOG_FORMAT="json",
        PLANE_API_URL=plane.url,
        PLANE_API_KEY=PLANE_KEY,
        PLANE_RATE_LIMIT_PER_MINUTE="6000",
        PLANE_RETRY_BACKOFF="0.01",
        PLANE_SYNC_RETRY_SECONDS="0.05",
        ORCH_POST_DEPLOY_PROBE_TIMEOUT="0.5",
        Q_WORKERS="1",
        Q_TIMEOUT="20",
        Q_RETRY="30",
    )
    logs = [tmp_path / "cluster-a.log", tmp_path / "cluster-b.log"]
    streams = [log.open("w") for log in logs]
    clusters = [start(env, "qcluster", stderr=stream) for stream in streams]
    try:
        wait_for(lambda: all("running." in log.read_text() for log in logs), 30, "both clusters")
        # One worker a cluster (the default) holds at most three tasks (running, queued,
        # in its pusher's hand): of six queued at once, each cluster takes at least three.
        for task in deploys.values():
            reply = api.post(f"/api/tasks/{task.work_item_id}/deploy/succeed/")
            assert reply.status_code == 200, reply.content
        for _ in range(TICKS):  # besides the deploys' own tick and sync
            async_task("monitoring.ticks.monitor_tick")
        wait_for(lambda: all_told(len(deploys), sweeps=0), 40, "every verdict, action, comment")
        # The same for the sweeps, on clusters that are idle again.
        plane.delay_for(30, 0.3)  # slow answers keep each sweep inside its lease a while
        for n in range(SWEEPS):
            async_task(SWEEP, full=n % 2 == 0)
        wait_for(lambda: all_told(len(deploys), SWEEPS), 40, "the sweeps and the board")
    finally:
        stop(clusters)
        health.stop()
        for stream in streams:
            stream.close()

    records = [(n, r) for n, log in enumerate(logs) for r in log_records(log)]
    # Both clusters ticked and both swept: what follows is about two clusters, not one.
    for func in ("monitoring.ticks.monitor_tick", SWEEP):
        ran = {n for n, r in records if r.get("message", "").endswith(f" '{func}'")}
        assert ran == {0, 1}, f"{func} ran on clusters {ran}"

    # Each window: exactly one verdict, the right one, and every probe made was recorded
    # once (a window ticked by two runs at once would have a probe more than its rows).
    closed = Counter(
        r["message"].split(" closed: ")[0]
        for _, r in records
        if " closed: " in r.get("message", "")
    )
    for repo, task in deploys.items():
        window = MonitorWindow.objects.get(task=task)
        assert window.verdict == ("DEGRADED" if repo in FAILING else "HEALTHY")
        assert closed[f"window {window.pk} of {repo}"] == 1
        assert health.hits[repo] == window.probes.count() == window.probes_total
    # Each failing deploy rolled back exactly once; each deploy told once on its work item.
    rolled_back = Counter(marker.read_text().split())
    assert rolled_back == Counter(str(deploys[repo].work_item_id) for repo in FAILING)
    for task in deploys.values():
        assert len(plane.comments(str(task.work_item_id))) == 1

    # No two runs swept the project at once, the runs met, and each repair was made once.
    spans = sorted(
        (datetime.fromisoformat(r["swept_from"]), datetime.fromisoformat(r["swept_until"]))
        for _, r in records
        if r.get("event") == "reconcile_project"
    )
    assert len(spans) == ReconcileRun.objects.filter(projects=1).count() >= 1
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert ReconcileRun.objects.filter(note__contains="another run is sweeping it").exists()
    repairs = ReconcileRepair.objects.values_list("work_item_id", flat=True)
    assert Counter(str(i) for i in repairs) == Counter([*missed, deleted])

    # The board ends right.
    def shows(work_item_id) -> str:
        state = plane.work_item(str(work_item_id))["state"]
        return next(s["name"] for s in plane.states(project) if s["id"] == state)

    for repo, task in deploys.items():
        assert shows(task.work_item_id) == ("Blocked" if repo in FAILING else "Done")
    for work_item_id in missed:
        assert Task.objects.get(work_item_id=work_item_id).stage == "analysis"
        assert shows(work_item_id) == "Analysis"
    assert Task.objects.get(work_item_id=deleted).stage == "cancelled"
