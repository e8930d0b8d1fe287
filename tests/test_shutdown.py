"""SIGTERM stops a real q cluster promptly with a backlog, and loses nothing accepted."""

import signal
import subprocess
import time

import pytest

from tests.processes import wait_for
from tests.test_smoke import (  # noqa: F401  (the fixture)
    deployment,
    pytestmark,  # noqa: E402,F401  (SQLite only, as the smoke test)
)

BACKLOG = 1000

# Deliveries that are each decided singly (a state no cache knows: the drain hands them to
# process_delivery), so the backlog takes the cluster well over 10 s to work off.
FILL = f"""
import hashlib, json, uuid
from plane_integration.models import PlaneProject, WebhookDelivery
from plane_integration.ingest import request_drain
project = PlaneProject.objects.create(project_id=uuid.uuid4(), workspace_slug="s", repo="r")
rows = []
for n in range({BACKLOG}):
    body = json.dumps({{"event": "issue", "action": "updated", "data": {{"id": str(uuid.uuid4()),
        "project": str(project.project_id)}}, "activity": {{"field": "state",
        "new_value": str(uuid.uuid4()), "actor": {{"id": str(uuid.uuid4())}}}}}}).encode()
    rows.append(WebhookDelivery(dedupe_key=hashlib.sha256(body).hexdigest(), event="issue",
        action="updated", body=body))
WebhookDelivery.objects.bulk_create(rows)
request_drain()
"""
COUNT = (
    "from plane_integration.models import WebhookDelivery as W; from django.db.models import Q; "
    "print(W.objects.filter(state='pending').count(), W.objects.exclude(state='pending').count(),"
    " W.objects.filter(claimed_until__isnull=False).exclude(state='pending').count(),"
    " W.objects.exclude(attempts__in=(0, 1)).count())"
)


def test_sigterm_stops_the_cluster_within_10_s_and_the_rest_is_worked_off_after(deployment):  # noqa: F811
    manage, start, stop = deployment
    manage("shell", "-v", "0", "-c", FILL)

    def counts():
        return [int(n) for n in manage("shell", "-v", "0", "-c", COUNT).stdout.split()]

    cluster = start("cluster", "qcluster")
    wait_for(lambda: counts()[1] > 0, 60, "the cluster to start on the backlog")
    stopping = time.monotonic()
    cluster.send_signal(signal.SIGTERM)
    try:
        cluster.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("the q cluster was still running 10 s after SIGTERM")
    took = time.monotonic() - stopping
    pending, done, _, twice = counts()
    assert pending > 0, "the backlog was worked off before the stop: make it larger"
    assert pending + done == BACKLOG
    assert twice == 0
    print(f"stopped {took:.1f} s after SIGTERM with {pending} of {BACKLOG} pending")

    start("cluster again", "qcluster")
    wait_for(lambda: counts()[0] == 0, 180, "the rest of the backlog to be worked off")
    pending, done, claimed, twice = counts()
    assert (pending, done, claimed, twice) == (0, BACKLOG, 0, 0)  # each once, none lost
