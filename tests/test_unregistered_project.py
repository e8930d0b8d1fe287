"""A task in a project Stageboard does not show is refused, or counted as failing."""

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from pipeline.models import Task
from plane_integration.models import BoardStatus
from plane_integration.sync import sync_board
from tests.conftest import WORK_ITEM, make_user

pytestmark = pytest.mark.django_db
UNKNOWN = "0b0e0000-0000-4000-8000-00000000dead"


def test_the_api_refuses_a_task_in_an_unregistered_project(api, plane, plane_project):
    answer = api.post(
        "/api/tasks/",
        {"work_item_id": WORK_ITEM, "project_id": UNKNOWN, "title": "lost"},
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert f"manage.py plane_project add {UNKNOWN}" in answer.json()["project_id"][0]
    assert not Task.objects.exists()
    known = api.post(
        "/api/tasks/",
        {"work_item_id": WORK_ITEM, "project_id": str(plane_project.project_id)},
        content_type="application/json",
    )
    assert known.status_code == 201


def test_without_a_plane_any_project_is_accepted(api, settings):
    settings.PLANE_API_URL = ""
    answer = api.post(
        "/api/tasks/",
        {"work_item_id": WORK_ITEM, "project_id": UNKNOWN},
        content_type="application/json",
    )
    assert answer.status_code == 201


def test_a_row_that_can_never_be_sent_counts_as_failing_everywhere(
    plane, make_task, client, settings, django_capture_on_commit_callbacks
):
    from pipeline import engine

    task = make_task(project_id=UNKNOWN)  # stored before the check existed
    with django_capture_on_commit_callbacks(execute=True):
        engine.advance_stage(task, "development", caller="ci")
    sync_board(max_seconds=2)
    row = BoardStatus.objects.get(task=task)
    assert row.last_outcome == "skipped" and "plane_project add" in row.last_error
    client.force_login(make_user("ops", superuser=True))
    page = client.get("/admin/").content.decode()
    assert "Every status reached Plane" not in page
    assert "Board rows failing to sync (1)" in page
    settings.METRICS_BEARER_TOKEN = "t"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    [failing] = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "stageboard_board_rows_failing"
    ]
    assert failing == 1
    BoardStatus.objects.update(desired_at=timezone.now() - timezone.timedelta(minutes=11))
    from operations.sweeps import board_failing

    assert board_failing() == 1
