"""The dashboard's top line: one verdict, problems worst first, or a set-up checklist."""

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import MonitorWindow
from operations import verdict
from pipeline import switchboard
from pipeline.models import StageChange
from plane_integration.models import PlaneProject, PlaneState
from tests.conftest import PROJECT, make_user

pytestmark = pytest.mark.django_db
ALIVE = {"ok": True, "clusters": [{"host": "q1", "status": "Idle", "workers": 1}]}


@pytest.fixture
def operator(client):
    client.force_login(make_user("ops", superuser=True))
    return client


@pytest.fixture
def set_up(settings, monkeypatch):
    settings.PLANE_API_URL = "https://plane.example.com"
    settings.PLANE_API_KEY = "plane_api_x"
    settings.PLANE_WEBHOOK_SECRET = "plane_wh_x"
    project = PlaneProject.objects.create(project_id=PROJECT, workspace_slug="acme", repo="shop")
    PlaneState.objects.create(
        project=project, state_id="0b0e0000-0000-4000-8000-000000000001", name="Todo",
        group="unstarted",
    )  # fmt: skip
    monkeypatch.setattr(verdict, "check_cluster", lambda: ALIVE)


def test_a_fresh_install_shows_the_checklist_not_all_good(operator, settings):
    settings.PLANE_API_URL = ""
    assert not verdict.is_set_up()
    items = {item.key: item.done for item in verdict.setup_checklist()}
    assert items["plane"] is False and items["project"] is False
    page = operator.get("/admin/").content.decode()
    assert 'data-verdict="setup"' in page and "All good" not in page
    assert 'data-item="plane" data-done="no"' in page


def test_a_set_up_install_with_nothing_wrong_is_all_good(operator, set_up):
    assert verdict.problems() == []
    page = operator.get("/admin/").content.decode()
    assert 'data-verdict="green"' in page and "All good" in page
    assert 'id="model-index"' in page and "/admin/pipeline/" in page
    assert 'id="app-list"' not in page  # the raw model index left the front page


def test_a_dead_cluster_is_the_worst_problem(operator, set_up, monkeypatch):
    monkeypatch.setattr(verdict, "check_cluster", lambda: {"ok": False, "error": "gone"})
    switchboard.update("test", reconcile_enabled=False)
    keys = [p.key for p in verdict.problems()]
    assert keys == ["no_cluster", "kill_switch"]
    page = operator.get("/admin/").content.decode()
    assert 'data-verdict="red"' in page and "2 problems" in page


def test_problems_come_worst_first_and_link_to_where_they_are_fixed(set_up, make_task):
    task = make_task(stage="done", deploy_phase="")
    now = timezone.now()
    window = MonitorWindow.objects.create(
        task=task, cycle=1, repo="shop", opened_at=now, closes_at=now, state="closed",
        verdict="DEGRADED", action="rollback", action_state="failed",
    )  # fmt: skip
    waiting = make_task(stage="deploy", deploy_phase="awaiting_approval")
    change = StageChange.objects.create(
        task=waiting, cycle=1, from_stage="deploy", to_stage="deploy", from_phase="",
        to_phase="awaiting_approval", caller="ci",
    )  # fmt: skip
    StageChange.objects.filter(pk=change.pk).update(created_at=now - timedelta(hours=2))
    switchboard.update("test", git_events_enabled=False)
    found = verdict.problems()
    assert [p.key for p in found] == ["rollback_failed", "kill_switch", "approvals_waiting"]
    assert found[0].severity == "red" and found[1].severity == "amber"
    assert found[0].url == f"/admin/monitoring/monitorwindow/{window.pk}/change/"
    assert "Git host events" in found[1].text
