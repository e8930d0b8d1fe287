"""Git hosts end to end: real HTTP requests to the endpoints, the q cluster's own functions,
the Plane stand-in on loopback for identifiers, work items and links; races on PostgreSQL."""

import uuid

import pytest
import requests

from git_hosts.drain import drain_git_events
from git_hosts.links import send_links
from git_hosts.models import GitEvent, GitRepo, PullRequestLink
from pipeline.models import Task
from plane_integration.models import PlaneProject
from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES
from tests.concurrency import at_once
from tests.git_fixtures import body, github_headers
from tests.qcluster import run_queued_tasks
from tests.test_git_hosts import GITHUB_PATH, SECRETS, pull_request

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def git_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRETS["github"]


@pytest.fixture
def demo(plane, settings):
    """A Plane project DEMO (its identifier not known to Stageboard yet), a work item in
    it without a task, and the shop repo linked to the examples' GitHub repository."""
    project_id = plane.add_project(
        "acme", identifier="DEMO", states=DEFAULT_STATES + PIPELINE_STATES
    )
    project = PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="web")
    item = plane.add_work_item("acme", project_id, "Fix the login", state="Todo")
    GitRepo.objects.create(repo="shop", provider="github", path=GITHUB_PATH)
    readable = f"DEMO-{plane.work_item(item)['sequence_id']}"
    return project, item, readable


def post(url: str, payload: dict, delivery: str | None = None) -> requests.Response:
    raw = body(payload)
    headers = github_headers(raw, SECRETS["github"], "pull_request", delivery or str(uuid.uuid4()))
    return requests.post(f"{url}/webhooks/github/", data=raw, headers=headers, timeout=10)


def test_a_pr_naming_a_work_item_without_a_task_starts_it_moves_it_and_links_it_once(
    live_server, plane, demo
):
    project, item, readable = demo
    answer = post(live_server.url, pull_request(branch=f"{readable.lower()}-login"))
    assert (answer.status_code, answer.json()["status"]) == (202, "accepted")
    run_queued_tasks()  # the drain (queued by the delivery), then the links and the board
    task = Task.objects.get(work_item_id=item)
    project.refresh_from_db()
    assert project.identifier == "DEMO"  # read from Plane once
    assert (task.identifier, task.title, task.repo) == (readable, "Fix the login", "shop")
    assert task.stage == "code_review"
    assert GitEvent.objects.get().outcome == GitEvent.Outcome.APPLIED
    links = plane.links(item)
    assert [(link["url"], link["title"]) for link in links] == [
        (f"https://github.com/{GITHUB_PATH}/pull/2", "PR #2 · Fix the login")
    ]
    # Another event of the same PR: no second link; a resend meets Plane's "already exists".
    post(live_server.url, pull_request("edited", minute=1, branch=readable))
    run_queued_tasks()
    PullRequestLink.objects.update(linked_at=None, next_attempt_at="2000-01-01T00:00:00Z")
    assert send_links() == {"linked": 1, "skipped": 0, "failed": 0}
    assert len(plane.links(item)) == 1
    assert plane.calls("POST", "/links/")[-1].status == 400  # "URL already exists"


def test_a_plane_outage_delays_the_link_but_not_the_stage_move(live_server, plane, demo):
    _, item, readable = demo
    post(live_server.url, pull_request(branch=readable))
    drain_git_events()  # Plane answers the look-ups: the task starts and moves
    plane.fail_for(30, status=503)
    report = send_links()
    assert report["failed"] == 1
    task = Task.objects.get(work_item_id=item)
    assert task.stage == "code_review"
    link = PullRequestLink.objects.get()
    assert link.linked_at is None and "503" in link.last_error
    assert plane.links(item) == []
    plane.fail_for(0)
    PullRequestLink.objects.update(next_attempt_at="2000-01-01T00:00:00Z")
    assert send_links()["linked"] == 1
    assert len(plane.links(item)) == 1


def test_a_plane_outage_during_a_look_up_fails_the_event_to_be_retried(live_server, plane, demo):
    _, item, readable = demo
    plane.fail_for(30, status=503)
    post(live_server.url, pull_request(branch=readable))
    drain_git_events()
    event = GitEvent.objects.get()
    assert event.outcome == GitEvent.Outcome.FAILED and event.retry_at is not None
    assert not Task.objects.exists()  # nothing half-applied
    plane.fail_for(0)
    GitEvent.objects.update(retry_at="2000-01-01T00:00:00Z")
    drain_git_events()
    event.refresh_from_db()
    assert event.outcome == GitEvent.Outcome.APPLIED
    assert Task.objects.get(work_item_id=item).stage == "code_review"


@pytest.mark.postgres
def test_the_same_delivery_at_once_is_stored_once_and_applied_once(live_server, plane, demo):
    _, item, readable = demo
    payload = pull_request(branch=readable)
    answers = at_once(lambda: post(live_server.url, payload, delivery="one-guid").status_code, 6)
    assert sorted(answers) == [200] * 5 + [202]
    assert GitEvent.objects.count() == 1
    results = at_once(drain_git_events, 3)
    assert sum(r.get("applied", 0) for r in results) == 1
    task = Task.objects.get(work_item_id=item)
    assert [c.to_stage for c in task.history.all()] == ["development", "code_review"]


@pytest.mark.postgres
def test_two_prs_of_one_task_at_once_leave_one_history_per_stage(live_server, plane, demo):
    _, item, readable = demo
    post(live_server.url, pull_request(number=2, branch=readable))
    post(live_server.url, pull_request(number=3, branch=f"{readable}-docs"))
    at_once(drain_git_events, 2)
    drain_git_events()
    task = Task.objects.get(work_item_id=item)
    assert [c.to_stage for c in task.history.all()] == ["development", "code_review"]
    assert set(GitEvent.objects.values_list("outcome", flat=True)) == {"applied"}
