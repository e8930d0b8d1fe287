"""Git hosts drive the pipeline: signed deliveries, pull requests moving tasks, deploys.

The payloads are the hosts' own (tests/fixtures/git, see each folder's README), edited
here where a test needs another branch, title or time, and signed as each host signs.
"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from git_hosts.drain import drain_git_events
from git_hosts.models import GitEvent, GitRepo, PullRequest, PullRequestLink
from operations.models import Notification
from pipeline import engine, switchboard
from pipeline.models import Deployment, Task
from plane_integration.models import PlaneProject
from tests.git_fixtures import body, forgejo_headers, github_headers, gitlab_headers, load

PROJECT = "0de00000-0000-4000-8000-0000000000aa"
SECRETS = {"github": "gh-secret", "gitlab": "gl-token", "forgejo": "fj-secret"}
GITHUB_PATH = "Codertocat/Hello-World"  # the octokit examples' repository
Outcome = GitEvent.Outcome


@pytest.fixture(autouse=True)
def git_settings(settings):
    settings.GITHUB_WEBHOOK_SECRET = SECRETS["github"]
    settings.GITLAB_WEBHOOK_SECRET = SECRETS["gitlab"]
    settings.FORGEJO_WEBHOOK_SECRET = SECRETS["forgejo"]
    settings.PLANE_API_URL = ""  # no Plane unless a test starts the stand-in


@pytest.fixture
def linked(db):
    """The shop repo linked to the examples' GitHub repository; Plane's project DEMO."""
    PlaneProject.objects.create(
        project_id=PROJECT, workspace_slug="acme", repo="shop", identifier="DEMO"
    )
    return GitRepo.objects.create(repo="shop", provider="github", path=GITHUB_PATH)


@pytest.fixture
def task(make_task, linked):
    """DEMO-7, in analysis."""
    return make_task(identifier="DEMO-7", project_id=PROJECT)


def at(minute: int) -> str:
    return (datetime(2026, 12, 4, 10, 0, tzinfo=UTC) + timedelta(minutes=minute)).isoformat()


def pull_request(
    action="opened",
    *,
    number=2,
    branch="DEMO-7-fix-login",
    title="Fix the login",
    draft=False,
    state="open",
    merged=False,
    minute=0,
    base="master",
    merge_sha="",
) -> dict:
    payload = load("github", "pull_request.opened")
    payload["action"] = action
    pr = payload["pull_request"]
    pr.update(
        number=number,
        title=title,
        body="",
        draft=draft,
        state=state,
        merged=merged,
        updated_at=at(minute),
        merged_at=at(minute) if merged else None,
        merge_commit_sha=merge_sha or ("a" * 40 if merged else None),
        html_url=f"https://github.com/{GITHUB_PATH}/pull/{number}",
    )
    pr["head"]["ref"] = branch
    pr["base"]["ref"] = base
    return payload


def send(client, provider: str, event: str, payload: dict, delivery: str | None = None):
    raw = body(payload)
    delivery = delivery or str(uuid.uuid4())
    if provider == "github":
        headers = github_headers(raw, SECRETS["github"], event, delivery)
    elif provider == "gitlab":
        headers = gitlab_headers(SECRETS["gitlab"], event, delivery)
    else:
        headers = forgejo_headers(raw, SECRETS["forgejo"], event, delivery)
    return client.post(
        f"/webhooks/{provider}/",
        raw,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )


def deliver(client, provider: str, event: str, payload: dict, delivery=None) -> GitEvent:
    """Send and work off the event as the q cluster's drain would; the event after."""
    answer = send(client, provider, event, payload, delivery)
    assert answer.status_code in (200, 202), answer.content
    drain_git_events()
    return GitEvent.objects.get(pk=answer.json()["event"])


def history(task: Task) -> list[tuple[str, str, str]]:
    return [(c.to_stage, c.to_phase, c.caller) for c in task.history.all()]


# --- the edge ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["github", "forgejo"])
def test_it_refuses_an_unsigned_or_wrongly_signed_delivery_and_stores_nothing(client, provider):
    raw = body(pull_request())
    unsigned = client.post(
        f"/webhooks/{provider}/",
        raw,
        content_type="application/json",
        headers={"X-GitHub-Event": "pull_request", "X-Forgejo-Event": "pull_request"},
    )
    assert unsigned.status_code == 403
    assert "not signed" in unsigned.json()["detail"]
    if provider == "github":
        headers = github_headers(raw, "another secret", "pull_request", "d1")
    else:
        headers = forgejo_headers(raw, "another secret", "pull_request", "d1")
    wrong = client.post(
        f"/webhooks/{provider}/",
        raw,
        content_type="application/json",
        headers={k: v for k, v in headers.items() if k != "Content-Type"},
    )
    assert wrong.status_code == 403
    assert "does not match" in wrong.json()["detail"]
    assert GitEvent.objects.count() == 0


@pytest.mark.django_db
def test_it_refuses_a_wrong_gitlab_token_and_a_provider_whose_secret_is_unset(client, settings):
    headers = gitlab_headers("not the token", "Merge Request Hook", "u1")
    headers.pop("Content-Type")
    raw = body(load("gitlab", "merge_request"))
    wrong = client.post("/webhooks/gitlab/", raw, content_type="application/json", headers=headers)
    assert wrong.status_code == 403
    settings.GITHUB_WEBHOOK_SECRET = ""
    unset = send(client, "github", "pull_request", pull_request())
    assert unset.status_code == 403
    assert "GITHUB_WEBHOOK_SECRET" in unset.json()["detail"]
    assert GitEvent.objects.count() == 0


@pytest.mark.django_db
def test_it_takes_gitea_signatures_alone(client):
    raw = body(load("forgejo", "pull_request.opened"))
    headers = forgejo_headers(raw, SECRETS["forgejo"], "pull_request", "g1", gitea_only=True)
    headers.pop("Content-Type")
    answer = client.post(
        "/webhooks/forgejo/", raw, content_type="application/json", headers=headers
    )
    assert answer.status_code == 202, answer.content
    assert GitEvent.objects.get().delivery_id == "g1"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "raw, content_type, detail",
    [
        (b"[1, 2]", "application/json", "not a JSON object"),
        (b"{nope", "application/json", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", "not valid JSON"),
        (b"payload=%7B%7D", "application/x-www-form-urlencoded", "application/json"),
    ],
)
def test_a_signed_body_that_is_not_a_json_object_is_a_400(client, raw, content_type, detail):
    headers = github_headers(raw, SECRETS["github"], "pull_request", "d")
    headers.pop("Content-Type")
    answer = client.post("/webhooks/github/", raw, content_type=content_type, headers=headers)
    assert answer.status_code == 400
    assert detail in answer.json()["detail"]
    assert GitEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_delivery_id_of_ten_thousand_characters_is_a_400_and_an_oversized_body_a_413(
    client, settings
):
    long_id = send(client, "github", "pull_request", pull_request(), delivery="x" * 10_000)
    assert long_id.status_code == 400
    settings.PLANE_WEBHOOK_MAX_BYTES = 1024
    big = pull_request(title="x" * 2000)
    assert send(client, "github", "pull_request", big).status_code == 413
    assert GitEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_ping_and_an_unused_event_are_2xx_and_recorded_as_ignored(client):
    ping = send(client, "github", "ping", load("github", "ping"))
    push = send(client, "github", "push", load("github", "push.branch"))
    assert (ping.status_code, push.status_code) == (202, 202)
    rows = {e.event: e for e in GitEvent.objects.all()}
    assert rows["ping"].outcome == Outcome.IGNORED and "ping" in rows["ping"].detail
    assert rows["push"].outcome == Outcome.IGNORED and "push events" in rows["push"].detail


def test_the_same_delivery_twice_is_stored_once_and_applied_once(client, task):
    first = send(client, "github", "pull_request", pull_request(), delivery="same-guid")
    again = send(client, "github", "pull_request", pull_request(), delivery="same-guid")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json()["status"] == "duplicate"
    drain_git_events()
    assert GitEvent.objects.count() == 1
    task.refresh_from_db()
    assert [s for s, _, _ in history(task)] == ["development", "code_review"]


# --- stages from pull requests -------------------------------------------------------------


def test_an_open_ready_pr_walks_the_task_to_code_review_one_allowed_step_at_a_time(client, task):
    event = deliver(client, "github", "pull_request", pull_request())
    task.refresh_from_db()
    assert event.outcome == Outcome.APPLIED
    assert task.stage == "code_review"
    assert history(task) == [
        ("development", "", "github:Codertocat"),
        ("code_review", "", "github:Codertocat"),
    ]
    assert {c.reason for c in task.history.all()} == {f"https://github.com/{GITHUB_PATH}/pull/2"}
    assert list(event.tasks.all()) == [task]


def test_a_draft_means_development_and_ready_for_review_means_code_review(client, task):
    deliver(client, "github", "pull_request", pull_request(draft=True))
    task.refresh_from_db()
    assert task.stage == "development"
    deliver(client, "github", "pull_request", pull_request("ready_for_review", minute=1))
    task.refresh_from_db()
    assert task.stage == "code_review"
    deliver(
        client, "github", "pull_request", pull_request("converted_to_draft", minute=2, draft=True)
    )
    task.refresh_from_db()
    assert task.stage == "development"


def test_a_merge_into_the_default_branch_moves_to_deploy_and_asks_for_approval(client, task):
    deliver(client, "github", "pull_request", pull_request())
    deliver(
        client,
        "github",
        "pull_request",
        pull_request("closed", state="closed", merged=True, minute=5),
    )
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("deploy", "awaiting_approval")
    pr = PullRequest.objects.get()
    assert (pr.state, pr.merge_commit_sha) == ("merged", "a" * 40)


def test_a_merge_into_another_branch_and_a_pr_closed_unmerged_mean_development(client, task):
    deliver(client, "github", "pull_request", pull_request())
    deliver(client, "github", "pull_request", pull_request("closed", state="closed", minute=1))
    task.refresh_from_db()
    assert task.stage == "development"
    assert [s for s, _, _ in history(task)][-1] == "development"


def test_an_open_pr_keeps_code_review_while_another_is_merged(client, task):
    deliver(client, "github", "pull_request", pull_request(number=2))
    deliver(client, "github", "pull_request", pull_request(number=3, branch="DEMO-7-docs"))
    deliver(
        client,
        "github",
        "pull_request",
        pull_request("closed", number=2, state="closed", merged=True, minute=3),
    )
    task.refresh_from_db()
    assert task.stage == "code_review"  # PR 3 is still open


def test_changes_requested_count_as_development_until_the_pr_is_updated(client, task):
    deliver(client, "github", "pull_request", pull_request())
    review = load("github", "pull_request_review.dismissed")
    review.update(action="submitted", pull_request=pull_request(minute=1)["pull_request"])
    review["review"].update(state="changes_requested", submitted_at=at(1))
    deliver(client, "github", "pull_request_review", review)
    task.refresh_from_db()
    assert task.stage == "development"
    deliver(client, "github", "pull_request", pull_request("synchronize", minute=2))
    task.refresh_from_db()
    assert task.stage == "code_review"


def test_an_older_event_is_stale_and_changes_nothing(client, task):
    deliver(client, "github", "pull_request", pull_request(draft=True, minute=10))
    old = deliver(client, "github", "pull_request", pull_request(minute=5))
    task.refresh_from_db()
    assert old.outcome == Outcome.STALE
    assert task.stage == "development"
    assert PullRequest.objects.get().state == "draft"


def test_a_stage_the_task_has_is_a_no_op_without_a_second_history_row(client, task):
    deliver(client, "github", "pull_request", pull_request())
    deliver(client, "github", "pull_request", pull_request("edited", minute=1))
    task.refresh_from_db()
    assert len(history(task)) == 2


def test_pr_events_do_not_move_a_task_whose_deploy_started(client, task):
    engine.advance_stage(task, "development", caller="t")
    engine.advance_stage(task, "code_review", caller="t")
    engine.advance_stage(task, "deploy", caller="t")
    engine.request_deploy_approval(task, caller="t")
    engine.approve_deploy(task, caller="t")
    engine.start_deploy(task, caller="t")
    event = deliver(client, "github", "pull_request", pull_request(draft=True))
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("deploy", "deploying")
    assert event.outcome == Outcome.IGNORED
    assert "no longer move it" in event.detail


def test_a_pr_that_names_nothing_and_a_repo_linked_to_nothing_are_ignored(client, task):
    nothing = deliver(client, "github", "pull_request", pull_request(branch="fix-typo"))
    assert nothing.outcome == Outcome.IGNORED and "names no work item" in nothing.detail
    other = pull_request()
    other["repository"]["full_name"] = "someone/else"
    unlinked = deliver(client, "github", "pull_request", other)
    assert unlinked.outcome == Outcome.IGNORED
    assert "linked to no Stageboard repo" in unlinked.detail
    task.refresh_from_db()
    assert task.stage == "analysis"


def test_the_kill_switch_stores_and_shows_events_but_moves_nothing(client, task):
    switchboard.update("test", git_events_enabled=False)
    event = deliver(client, "github", "pull_request", pull_request())
    task.refresh_from_db()
    assert task.stage == "analysis"
    assert event.outcome == Outcome.IGNORED and "git_events_enabled" in event.detail


def test_the_identifier_is_found_case_insensitively_in_title_or_description(client, task):
    payload = pull_request(branch="fix-login", title="Fix the login (demo-7)")
    deliver(client, "github", "pull_request", payload)
    task.refresh_from_db()
    assert task.stage == "code_review"


# --- deploys -------------------------------------------------------------------------------


def merged_and_approved(client, task, sha="a" * 40) -> Task:
    deliver(client, "github", "pull_request", pull_request())
    deliver(
        client,
        "github",
        "pull_request",
        pull_request("closed", state="closed", merged=True, minute=5, merge_sha=sha),
    )
    task.refresh_from_db()
    engine.approve_deploy(task, caller="admin:ops")
    return task


def deployment_status(state: str, *, sha="a" * 40, environment="production", minute=10):
    payload = load("github", "deployment_status.success")
    payload["deployment_status"].update(
        state=state,
        environment=environment,
        created_at=at(minute),
        target_url="https://ci.example.com/runs/9",
    )
    payload["deployment"].update(
        sha=sha, environment=environment, ref="master", created_at=at(minute - 1)
    )
    return payload


def test_deployment_statuses_start_and_finish_the_deploy_through_the_deploy_api_code(client, task):
    merged_and_approved(client, task)
    started = deliver(client, "github", "deployment_status", deployment_status("in_progress"))
    task.refresh_from_db()
    assert started.outcome == Outcome.APPLIED
    assert task.deploy_phase == "deploying"
    deliver(client, "github", "deployment_status", deployment_status("success", minute=12))
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("done", "")
    deployment = Deployment.objects.get(task=task)
    assert (deployment.commit_sha, deployment.ref, deployment.environment) == (
        "a" * 40,
        "master",
        "production",
    )
    assert deployment.ci_url == "https://ci.example.com/runs/9"
    assert deployment.outcome == "succeeded" and deployment.production
    assert deployment.committed_at is not None  # the PR's creation: DORA's lead time


def test_a_failed_deploy_sends_the_task_back_to_development(client, task):
    merged_and_approved(client, task)
    deliver(client, "github", "deployment_status", deployment_status("error"))
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("development", "")
    assert Deployment.objects.get(task=task).outcome == "failed"


def test_a_deploy_covers_tasks_merged_before_it_was_made_but_not_later_ones(
    client, task, make_task
):
    merged_and_approved(client, task, sha="b" * 40)  # merged at minute 5
    later = make_task(identifier="DEMO-8", project_id=PROJECT)
    deliver(client, "github", "pull_request", pull_request(number=9, branch="DEMO-8"))
    deliver(
        client,
        "github",
        "pull_request",
        pull_request(
            "closed",
            number=9,
            branch="DEMO-8",
            state="closed",
            merged=True,
            minute=30,
            merge_sha="c" * 40,
        ),
    )
    later.refresh_from_db()
    engine.approve_deploy(later, caller="admin:ops")
    # A deploy of another commit, made at minute 9: DEMO-7 merged before it, DEMO-8 after.
    deliver(client, "github", "deployment_status", deployment_status("success", sha="d" * 40))
    task.refresh_from_db()
    later.refresh_from_db()
    assert task.stage == "done"
    assert later.stage == "deploy"
    deliver(
        client, "github", "deployment_status", deployment_status("success", sha="c" * 40, minute=40)
    )
    later.refresh_from_db()
    assert later.stage == "done"


def test_a_staging_deploy_is_recorded_on_the_task_and_moves_no_stage(client, task):
    merged_and_approved(client, task)
    event = deliver(
        client, "github", "deployment_status", deployment_status("success", environment="staging")
    )
    task.refresh_from_db()
    assert event.outcome == Outcome.APPLIED
    assert (task.stage, task.deploy_phase) == ("deploy", "awaiting_approval")
    staging = Deployment.objects.get(task=task)
    assert (staging.environment, staging.production, staging.outcome) == (
        "staging",
        False,
        "succeeded",
    )


def test_the_approval_gate_refuses_a_deploy_event_and_a_person_is_told(
    client, task, admin_client, django_capture_on_commit_callbacks
):
    deliver(client, "github", "pull_request", pull_request())
    deliver(
        client,
        "github",
        "pull_request",
        pull_request("closed", state="closed", merged=True, minute=5),
    )
    with django_capture_on_commit_callbacks(execute=True):
        event = deliver(client, "github", "deployment_status", deployment_status("success"))
    task.refresh_from_db()
    assert event.outcome == Outcome.REFUSED
    assert "not been approved" in event.detail
    assert (task.stage, task.deploy_phase) == ("deploy", "awaiting_approval")
    assert not Deployment.objects.filter(task=task).exists()
    notice = Notification.objects.get(kind="git_deploy_refused")
    assert "refused" in notice.subject
    page = admin_client.get("/admin/")
    assert "Git host events refused or failed this week (1)" in page.content.decode()


def test_the_deploy_workflow_run_on_the_default_branch_counts_as_a_production_deploy(
    client, task, linked
):
    merged_and_approved(client, task, sha="3484a3fb816e0859fd6e1cea078d76385ff50625")
    run = load("github", "workflow_run.completed.success")
    run["repository"]["full_name"] = GITHUB_PATH
    run["workflow_run"].update(run_started_at=at(20), updated_at=at(21))
    ignored = deliver(client, "github", "workflow_run", run)
    assert ignored.outcome == Outcome.IGNORED and "deploy workflow" in ignored.detail
    GitRepo.objects.filter(pk=linked.pk).update(deploy_workflow="test")  # the workflow's name
    run["workflow_run"]["updated_at"] = at(22)
    deliver(client, "github", "workflow_run", run, delivery="second")
    task.refresh_from_db()
    assert task.stage == "done"
    assert Deployment.objects.get(task=task).ci_url == run["workflow_run"]["html_url"]


# --- GitLab and Forgejo --------------------------------------------------------------------


def test_gitlab_merge_requests_and_deployments_move_tasks_the_same_way(client, task, linked):
    GitRepo.objects.filter(pk=linked.pk).update(provider="gitlab", path="gitlabhq/gitlab-test")
    mr = load("gitlab", "merge_request")
    mr["object_attributes"].update(title="DEMO-7 viewport", updated_at="2026-12-04 10:00:00 UTC")
    assert deliver(client, "gitlab", "Merge Request Hook", mr).outcome == Outcome.APPLIED
    task.refresh_from_db()
    assert task.stage == "code_review"
    mr["object_attributes"].update(
        action="merge",
        state="merged",
        merge_commit_sha="e" * 40,
        updated_at="2026-12-04 10:05:00 UTC",
    )
    deliver(client, "gitlab", "Merge Request Hook", mr)
    task.refresh_from_db()
    assert (task.stage, task.deploy_phase) == ("deploy", "awaiting_approval")
    assert PullRequest.objects.get().label.startswith("MR !1 · ")
    engine.approve_deploy(task, caller="admin:ops")
    deployment = load("gitlab", "deployment")
    deployment["project"]["path_with_namespace"] = "gitlabhq/gitlab-test"
    deployment.update(
        environment="production",
        status_changed_at="2026-12-04 11:00:00 +0000",
        commit_url=f"https://gitlab.example.com/-/commit/{'e' * 40}",
    )
    deliver(client, "gitlab", "Deployment Hook", deployment)
    task.refresh_from_db()
    assert task.stage == "done"
    assert Deployment.objects.get(task=task).commit_sha == "e" * 40


def test_forgejo_pull_requests_move_tasks(client, task, linked):
    payload = load("forgejo", "pull_request.opened")
    GitRepo.objects.filter(pk=linked.pk).update(
        provider="forgejo", path=payload["repository"]["full_name"]
    )
    payload["pull_request"]["title"] = "DEMO-7: a patch"
    event = deliver(client, "forgejo", "pull_request", payload)
    task.refresh_from_db()
    assert event.outcome == Outcome.APPLIED
    assert task.stage == "code_review"
    assert history(task)[-1][2].startswith("forgejo:")


# --- the API, the command ------------------------------------------------------------------


def test_the_task_api_shows_identifier_and_pull_requests(client, api, task):
    deliver(client, "github", "pull_request", pull_request())
    answer = api.get(f"/api/tasks/{task.work_item_id}/").json()
    assert answer["identifier"] == "DEMO-7"
    assert answer["pull_requests"] == [
        {
            "provider": "github",
            "repo": GITHUB_PATH,
            "number": 2,
            "url": f"https://github.com/{GITHUB_PATH}/pull/2",
            "title": "Fix the login",
            "state": "open",
            "merge_commit_sha": "",
        }
    ]


def test_git_events_are_listed_newest_first_and_filtered_by_task(client, api, task, make_task):
    deliver(client, "github", "pull_request", pull_request())
    send(client, "github", "ping", load("github", "ping"))
    everything = api.get("/api/git-events/").json()["results"]
    assert [e["event"] for e in everything] == ["ping", "pull_request"]
    assert set(everything[0]) >= {
        "provider",
        "event",
        "delivery_id",
        "received_at",
        "outcome",
        "detail",
    }
    mine = api.get(f"/api/git-events/?task={task.work_item_id}").json()["results"]
    assert [(e["event"], e["outcome"]) for e in mine] == [("pull_request", "applied")]
    other = make_task()
    assert api.get(f"/api/git-events/?task={other.work_item_id}").json()["results"] == []
    assert api.get("/api/git-events/?task=nope").status_code == 400


@pytest.mark.django_db
def test_repo_set_links_a_git_repository_and_refuses_a_bad_one(capsys):
    call_command("repo", "set", "shop", "--git", "github:acme/shop", "--deploy-workflow", "Deploy")
    link = GitRepo.objects.get(repo="shop")
    assert (link.provider, link.path, link.production_environment, link.deploy_workflow) == (
        "github",
        "acme/shop",
        "production",
        "Deploy",
    )
    call_command("repo", "set", "shop", "--production-environment", "prod")
    assert GitRepo.objects.get(repo="shop").production_environment == "prod"
    call_command("repo", "list")
    assert "git=github:acme/shop (prod)" in capsys.readouterr().out
    with pytest.raises(CommandError, match="PROVIDER:PATH"):
        call_command("repo", "set", "web", "--git", "bitbucket:acme/web")
    assert not GitRepo.objects.filter(repo="web").exists()


def test_a_link_is_recorded_once_per_pull_request_and_task(client, task):
    deliver(client, "github", "pull_request", pull_request())
    deliver(client, "github", "pull_request", pull_request("edited", minute=1))
    link = PullRequestLink.objects.get()
    assert (link.task, link.pull_request.number) == (task, 2)


def test_the_task_page_lists_its_pull_requests_with_their_links(client, task, admin_client):
    deliver(client, "github", "pull_request", pull_request())
    page = admin_client.get(f"/admin/pipeline/task/{task.pk}/change/").content.decode()
    assert f'href="https://github.com/{GITHUB_PATH}/pull/2"' in page
    assert "PR #2 · Fix the login" in page
    events = admin_client.get("/admin/git_hosts/gitevent/").content.decode()
    assert "DEMO-7 -&gt; code_review" in events
