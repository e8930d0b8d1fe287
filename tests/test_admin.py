"""The operators' admin: tasks, their history, and the deploy approval action."""

import re

import pytest
from django.contrib.messages import get_messages

from pipeline.models import Task
from tests.conftest import PROJECT, make_user

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/pipeline/task/"


@pytest.fixture
def operator(client):
    client.force_login(make_user("ops", superuser=True))
    return client


def test_the_task_list_filters_by_stage_and_repo_and_searches_work_items(operator, make_task):
    shop = make_task(stage="deploy", repo="shop", title="Pay by card")
    make_task(stage="analysis", repo="blog", title="New theme")
    for query, expected in [
        ("?stage=deploy", ["Pay by card"]),
        ("?repo=blog", ["New theme"]),
        (f"?q={shop.work_item_id}", ["Pay by card"]),
        ("?q=not-a-uuid", []),
        ("?q=shop", ["Pay by card"]),
    ]:
        response = operator.get(CHANGELIST + query)
        assert response.status_code == 200, query
        shown = [str(t.title) for t in response.context["cl"].result_list]
        assert shown == expected, query


def test_the_task_search_finds_plane_identifiers_and_uuid_prefixes(operator, make_task):
    make_task(
        identifier="DEMO-3",
        title="Pay by card",
        work_item_id="0de0a1b2-0000-4000-8000-0000000000a3",
    )
    make_task(
        identifier="DEMO-30", title="New theme", work_item_id="0de0ffff-0000-4000-8000-0000000000b3"
    )
    for query, expected in [
        ("DEMO-3", ["Pay by card"]),
        ("demo-3", ["Pay by card"]),
        ("0de0a1b2", ["Pay by card"]),  # 8 characters: enough
        ("0de0a1b2-0000", ["Pay by card"]),
        ("0de0", []),  # too short to name one
        ("0de0FFFF", ["New theme"]),
    ]:
        response = operator.get(CHANGELIST, {"q": query})
        assert response.status_code == 200, query
        shown = sorted(t.title for t in response.context["cl"].result_list)
        assert shown == expected, query


def test_a_task_is_named_by_its_identifier_and_title(make_task):
    task = make_task(identifier="DEMO-3", title="Pay by card", stage="deploy")
    assert str(task) == "DEMO-3 · Pay by card (deploy)"
    untitled = make_task(title="")
    assert untitled.label == str(untitled.work_item_id)


def test_a_webhook_delivery_shows_and_finds_its_work_item_by_identifier(operator, make_task):
    from plane_integration.models import WebhookDelivery

    task = make_task(identifier="DEMO-3", title="Pay by card")
    WebhookDelivery.objects.create(
        event="issue", action="updated", work_item_id=task.work_item_id, dedupe_key="k1", body=b"{}"
    )
    WebhookDelivery.objects.create(event="issue", action="updated", dedupe_key="k2", body=b"{}")
    response = operator.get("/admin/plane_integration/webhookdelivery/", {"q": "demo-3"})
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 1
    assert "DEMO-3 · Pay by card" in response.content.decode()


def test_a_task_page_shows_its_history_and_no_editable_stage(operator, make_task, api):
    task = make_task(stage="analysis")
    api.post(
        f"/api/tasks/{task.work_item_id}/advance/",
        {"stage": "development"},
        content_type="application/json",
    )
    response = operator.get(f"{CHANGELIST}{task.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "api:ci" in page  # the history row's caller
    assert 'name="stage"' not in page


def test_an_operator_can_create_a_task_which_starts_in_analysis(operator):
    response = operator.post(
        f"{CHANGELIST}add/",
        {
            "work_item_id": "965752bc-110f-44c5-b119-4cd9510d58eb",
            "project_id": PROJECT,
            "repo": "shop",
            "title": "From the admin",
            "history-TOTAL_FORMS": "0",
            "history-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    assert Task.objects.get().stage == "analysis"


def test_the_approve_action_approves_waiting_deploys_and_explains_the_rest(operator, make_task):
    waiting = make_task(stage="deploy", deploy_phase="awaiting_approval", title="waiting")
    early = make_task(stage="code_review", title="early")
    response = operator.post(
        CHANGELIST,
        {"action": "approve_deploy", "_selected_action": [waiting.pk, early.pk]},
        follow=True,
    )
    waiting.refresh_from_db()
    early.refresh_from_db()
    assert waiting.deploy_approved_by == "admin:ops"
    assert waiting.history.get().caller == "admin:ops"
    assert early.deploy_approved_at is None and early.history.count() == 0
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert "Approved 1 deploy(s)." in texts
    assert any(
        t.startswith("early (code_review): not approved: approve needs a task in deploy")
        for t in texts
    )


def test_a_user_without_change_permission_cannot_approve(client, make_task):
    viewer = make_user("viewer", "pipeline.view_task")
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    client.post(CHANGELIST, {"action": "approve_deploy", "_selected_action": [task.pk]})
    task.refresh_from_db()
    assert task.deploy_approved_at is None


def test_plane_project_remove_forgets_the_project_and_keeps_its_tasks(make_task):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from plane_integration.models import PlaneProject

    PlaneProject.objects.create(project_id=PROJECT, workspace_slug="acme", repo="shop")
    task = make_task(stage="development")
    out = StringIO()
    call_command("plane_project", "remove", PROJECT, stdout=out)
    assert "removed" in out.getvalue() and "1 tasks kept" in out.getvalue()
    assert not PlaneProject.objects.exists()
    assert Task.objects.get(pk=task.pk).stage == "development"
    with pytest.raises(CommandError, match="no Plane project"):
        call_command("plane_project", "remove", PROJECT)


def test_the_api_docs_page_serves_swagger_ui_from_here_to_signed_in_users(client):
    assert client.get("/api/docs/").status_code in (401, 403)
    browser = client.get("/api/docs/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert browser.status_code == 302
    assert browser["Location"] == "/admin/login/?next=/api/docs/"
    client.force_login(make_user("reader"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema/" in page
    # No internet on the machines that run it: no script or style from a CDN. (Not a bare
    # "cdn" substring: the page's random CSRF token can contain those letters.)
    assert not re.search(r"https?://[^\"' ]*(cdn|unpkg|jsdelivr)", page, re.IGNORECASE)


def deploy(task, **fields):
    from pipeline.models import Deployment

    values = {
        "cycle": 1,
        "repo": task.repo,
        "commit_sha": "3f9c2e1ab4d5e6f708192a3b4c5d6e7f80912a3b",
    }
    return Deployment.objects.create(task=task, **{**values, **fields})


@pytest.mark.parametrize(
    "provider,path,address",
    [
        ("github", "acme/shop", "https://github.com/acme/shop/commit/"),
        ("gitlab", "acme/platform/shop", "https://gitlab.example.com/acme/platform/shop/-/commit/"),
        ("forgejo", "acme/shop", None),  # no Forgejo address known: plain text
    ],
)
def test_a_deployment_shows_its_short_sha_linked_to_the_commit(
    operator, make_task, settings, provider, path, address
):
    from git_hosts.models import GitRepo

    settings.GITLAB_WEB_URL = "https://gitlab.example.com/"
    GitRepo.objects.create(repo="shop", provider=provider, path=path)
    task = make_task(repo="shop", identifier="SHOP-1", title="Pay by card")
    deploy(task, outcome="rolled_back")
    sha = "3f9c2e1ab4d5e6f708192a3b4c5d6e7f80912a3b"
    for page in ("/admin/pipeline/deployment/", f"{CHANGELIST}{task.pk}/change/"):
        html = operator.get(page).content.decode()
        if address:
            assert f'href="{address}{sha}"' in html, page
        else:
            assert "/commit/" not in html, page
        assert "3f9c2e1</code>" in html, page


def test_a_deployment_outcome_is_coloured_like_its_verdict(operator, make_task):
    task = make_task(repo="shop")
    deploy(task, outcome="rolled_back", verdict="DEGRADED")
    html = operator.get("/admin/pipeline/deployment/").content.decode()
    assert 'style="background:#b91c1c;color:#fff' in html
    assert ">rolled_back</span>" in html


def test_the_task_page_shows_history_first_without_row_titles(operator, make_task, api):
    task = make_task(stage="deploy", repo="shop")
    for action in ("request-approval", "approve"):
        api.post(f"/api/tasks/{task.work_item_id}/deploy/{action}/", {}, "application/json")
    page = operator.get(f"{CHANGELIST}{task.pk}/change/").content.decode()
    assert page.index("history-group") < page.index("deployments-group")
    assert "awaiting_approval -&gt; awaiting_approval" not in page
    assert "deploy phase" not in page  # no StageChange str() over the rows


def test_a_task_with_deployments_cannot_be_deleted(operator, make_task):
    shipped, idea = make_task(repo="shop"), make_task(repo="shop")
    deploy(shipped, outcome="succeeded")
    assert "deletelink" not in operator.get(f"{CHANGELIST}{shipped.pk}/change/").content.decode()
    assert operator.get(f"{CHANGELIST}{shipped.pk}/delete/").status_code == 403
    assert "deletelink" in operator.get(f"{CHANGELIST}{idea.pk}/change/").content.decode()


def test_times_show_seconds_and_the_time_zone(operator, make_task, settings):
    import datetime as dt

    settings.TIME_ZONE = "Europe/Berlin"
    task = make_task(repo="shop")
    deploy(
        task, outcome="succeeded", finished_at=dt.datetime(2025, 3, 14, 8, 26, 53, tzinfo=dt.UTC)
    )
    html = operator.get("/admin/pipeline/deployment/").content.decode()
    assert "2025-03-14 09:26:53 CET" in html


def test_probe_latency_and_ratios_are_rounded_for_people():
    from monitoring.admin import milliseconds, percent

    assert milliseconds(131.7349) == "132 ms"
    assert milliseconds(None) == "-"
    assert (percent(0.125), percent(0.1), percent(1.0), percent(0)) == (
        "12.5%",
        "10%",
        "100%",
        "0%",
    )


def test_under_a_minute_ago_reads_just_now():
    import datetime as dt

    from django.utils import timezone

    from pipeline.templatetags.stageboard import ago

    assert ago(timezone.now() - dt.timedelta(seconds=20)) == "just now"
    assert (
        ago(timezone.now() - dt.timedelta(minutes=5, seconds=2)) == "5\xa0minutes ago"
    )  # a no-break space, as Django writes it
