"""A task's deploy phase never contradicts its stage, and its last deploy says how it ended."""

import pytest
from rest_framework.authtoken.models import Token

from pipeline import deployments, engine
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def reader(client):
    token = Token.objects.create(user=make_user("reader", "pipeline.view_task"))
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


def test_abort_clears_the_phase_and_the_history_shows_it(admin_client, reader, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    admin_client.post(f"/admin/pipeline/task/{task.pk}/abort/", {"reason": "wrong build"})
    body = reader.get(f"/api/tasks/{task.work_item_id}/").json()
    assert (body["stage"], body["deploy_phase"]) == ("development", None)
    last = body["history"][-1]
    assert (last["from_stage"], last["to_stage"]) == ("deploy", "development")
    assert (last["from_phase"], last["to_phase"]) == ("awaiting_approval", "")


def test_a_done_task_whose_deploy_was_rolled_back_says_so(reader, make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=True, caller="ci")
    deployments.record_verdict(
        task, task.cycle, outcome="rolled_back", verdict="DEGRADED", settle=True
    )
    body = reader.get(f"/api/tasks/{task.work_item_id}/").json()
    assert (body["stage"], body["deploy_phase"]) == ("done", None)
    assert body["last_deploy"]["outcome"] == "rolled_back"
    assert body["last_deploy"]["verdict"] == "DEGRADED"
    assert body["last_deploy"]["finished_at"]
    [listed] = reader.get("/api/tasks/").json()["results"]
    assert listed["last_deploy"] == body["last_deploy"]


def test_a_task_never_deployed_has_no_last_deploy(reader, make_task):
    task = make_task(stage="development")
    assert reader.get(f"/api/tasks/{task.work_item_id}/").json()["last_deploy"] is None


def test_a_deploy_result_sent_again_after_the_task_moved_on_changes_nothing(make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    engine.finish_deploy(task, succeeded=False, caller="ci")
    assert not engine.finish_deploy(task, succeeded=False, caller="ci").changed


def test_the_board_api_says_when_a_work_item_has_gone(reader, make_task):
    from django.utils import timezone

    from plane_integration.models import BoardStatus

    task = make_task(stage="development")
    now = timezone.now()
    BoardStatus.objects.create(task=task, desired_key="in_progress", desired_at=now, gone_at=now)
    body = reader.get(f"/api/tasks/{task.work_item_id}/board/").json()
    assert body["gone_at"] is not None and body["pending"] is False
