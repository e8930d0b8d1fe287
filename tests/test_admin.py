"""The operators' admin: tasks, their history, and the deploy approval action."""

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
    client.force_login(make_user("reader"))
    response = client.get("/api/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "swagger-ui" in page and "/api/schema/" in page
    assert "cdn" not in page.lower()  # no internet on the machines that run it
