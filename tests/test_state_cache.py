"""The per-project state cache against the Plane stand-in: refreshes and the negative cache."""

import json
import uuid

import pytest
import requests

from plane_integration.client import PlaneClient
from plane_integration.models import PlaneProject, PlaneState, WebhookDelivery
from plane_integration.states import refresh_states
from plane_integration.webhook_payloads import signature
from tests.concurrency import at_once
from tests.qcluster import run_queued_tasks


def states_of(project: PlaneProject) -> dict[str, str]:
    return {str(s.state_id): s.name for s in PlaneState.objects.filter(project=project)}


def listed(plane, project: PlaneProject) -> dict[str, str]:
    return {s["id"]: s["name"] for s in plane.states(str(project.project_id))}


@pytest.mark.django_db
def test_a_refresh_updates_in_place_and_removes_vanished_states(plane, plane_project):
    assert refresh_states(plane_project, PlaneClient.from_settings()).ok
    kept = PlaneState.objects.get(project=plane_project, name="Todo")
    PlaneState.objects.filter(pk=kept.pk).update(name="Old name")
    PlaneState.objects.create(project=plane_project, state_id=uuid.uuid4(), name="Gone", group="x")
    assert refresh_states(plane_project, PlaneClient.from_settings()).ok
    assert states_of(plane_project) == listed(plane, plane_project)
    assert PlaneState.objects.get(pk=kept.pk).name == "Todo"  # the same row, updated


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_of_one_project_all_succeed(plane, plane_project):
    # Delete-then-insert raised IntegrityError on plane_state_once when two ran at once.
    PlaneState.objects.create(project=plane_project, state_id=uuid.uuid4(), name="Gone", group="x")

    def refresh():
        project = PlaneProject.objects.get(pk=plane_project.pk)
        return refresh_states(project, PlaneClient.from_settings()).ok

    for _ in range(3):
        assert at_once(refresh, count=8) == [True] * 8
    assert states_of(plane_project) == listed(plane, plane_project)


# --- the negative cache: deliveries naming states the cache does not know ------------------

SECRET = "plane_wh_0123456789abcdef0123456789abcdef"


def move_to_unknown_state(live_server, project: PlaneProject) -> int:
    payload = {
        "event": "issue",
        "action": "updated",
        "data": {"id": str(uuid.uuid4()), "name": "x", "project": str(project.project_id)},
        "activity": {"field": "state", "new_value": str(uuid.uuid4()), "actor": {"id": "a"}},
    }
    body = json.dumps(payload).encode()
    headers = {"X-Plane-Signature": signature(body, SECRET)}
    url = f"{live_server.url}/webhooks/plane/"
    return requests.post(url, data=body, headers=headers, timeout=10).status_code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("period,reads", [(60, 1), (0, 5)])
def test_unknown_state_ids_read_the_states_once_per_period(
    live_server, plane, plane_project, settings, period, reads
):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_STATES_REFRESH_SECONDS = period
    assert refresh_states(plane_project, PlaneClient.from_settings()).ok  # the cache is warm
    plane.reset_log()
    for _ in range(5):
        assert move_to_unknown_state(live_server, plane_project) == 202
    run_queued_tasks()
    assert len(plane.calls("GET", contains="/states/")) == reads
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"ignored"}
