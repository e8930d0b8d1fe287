"""The pipeline API as its drivers call it: JSON over HTTP with a token."""

import json
import uuid

import pytest
from rest_framework.authtoken.models import Token

from pipeline.models import StageChange, Task
from tests.conftest import PROJECT, WORK_ITEM, make_user

pytestmark = pytest.mark.django_db


def post(client, url, body=None, **extra):
    return client.post(url, json.dumps(body or {}), content_type="application/json", **extra)


def task_url(task: Task, suffix: str = "") -> str:
    return f"/api/tasks/{task.work_item_id}/{suffix}"


# --- authentication and permissions ------------------------------------------------------


def test_it_asks_for_a_token(client, make_task):
    response = client.get("/api/tasks/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_it_refuses_an_unknown_token(client):
    response = client.get("/api/tasks/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_it_refuses_a_token_of_a_deactivated_user(client, driver):
    token = Token.objects.create(user=driver)
    driver.is_active = False
    driver.save()
    response = client.get("/api/tasks/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 401


def test_a_reader_may_read_but_not_drive(client, make_task):
    task = make_task(stage="analysis")
    token = Token.objects.create(user=make_user("dashboard", "pipeline.view_task"))
    auth = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    assert client.get(task_url(task), **auth).status_code == 200
    response = post(client, task_url(task, "advance/"), {"stage": "development"}, **auth)
    assert response.status_code == 403
    assert "pipeline.change_task" in response.json()["detail"]
    create = post(client, "/api/tasks/", {"work_item_id": WORK_ITEM, "project_id": PROJECT}, **auth)
    assert create.status_code == 403
    assert Task.objects.get(pk=task.pk).stage == "analysis"
    assert not Task.objects.filter(work_item_id=WORK_ITEM).exists()


def test_an_account_without_permissions_may_not_read(client):
    token = Token.objects.create(user=make_user("nobody"))
    response = client.get("/api/tasks/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403


# --- creating and reading ----------------------------------------------------------------


def test_it_creates_a_task_in_analysis_and_returns_the_existing_one_after(api):
    body = {"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": "Fix login", "repo": "shop"}
    created = post(api, "/api/tasks/", body)
    assert created.status_code == 201
    assert created.json()["stage"] == "analysis"
    assert created.json()["deploy_phase"] is None
    assert created.json()["history"] == []
    again = post(api, "/api/tasks/", {**body, "title": "Another title"})
    assert again.status_code == 200
    assert again.json()["title"] == "Fix login"
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    "body,field",
    [
        ({"project_id": PROJECT}, "work_item_id"),
        ({"work_item_id": "PROJ-12", "project_id": PROJECT}, "work_item_id"),
        ({"work_item_id": WORK_ITEM}, "project_id"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": "x" * 501}, "title"),
        # Not text: DRF read false and 0 as the nil UUID and numbers as text.
        ({"work_item_id": False, "project_id": PROJECT}, "work_item_id"),
        ({"work_item_id": 0, "project_id": PROJECT}, "work_item_id"),
        ({"work_item_id": WORK_ITEM, "project_id": 12345}, "project_id"),
        ({"work_item_id": WORK_ITEM, "project_id": [PROJECT]}, "project_id"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "repo": 0}, "repo"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "repo": False}, "repo"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": 1.5}, "title"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": {"a": 1}}, "title"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": "a\x00b"}, "title"),
        ({"work_item_id": WORK_ITEM, "project_id": PROJECT, "repo": "\ud800"}, "repo"),
    ],
)
def test_creating_with_bad_fields_says_which_and_writes_nothing(api, body, field):
    response = post(api, "/api/tasks/", body)
    assert response.status_code == 400
    assert field in response.json()
    assert field in response.json()["detail"]
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    "url,body",
    [
        ("advance/", {"stage": "development", "reason": 7}),
        ("advance/", {"stage": True}),
        ("deploy/request-approval/", {"reason": False}),
    ],
)
def test_driving_with_a_field_that_is_not_text_is_a_400(api, make_task, url, body):
    task = make_task(stage="deploy" if "deploy" in url else "analysis")
    response = post(api, task_url(task, url), body)
    assert response.status_code == 400
    assert set(body) & set(response.json())
    assert StageChange.objects.count() == 0


def test_a_work_item_with_a_task_in_another_project_is_a_409_naming_it(api):
    body = {"work_item_id": WORK_ITEM, "project_id": PROJECT, "title": "Fix login"}
    assert post(api, "/api/tasks/", body).status_code == 201
    other = "0e000000-0000-4000-8000-000000000001"
    response = post(api, "/api/tasks/", {**body, "project_id": other})
    assert response.status_code == 409
    assert PROJECT in response.json()["detail"]
    assert Task.objects.get().project_id == uuid.UUID(PROJECT)
    assert post(api, "/api/tasks/", body).status_code == 200  # the same project: idempotent


def test_the_schema_needs_a_user(client, api):
    anonymous = client.__class__()
    response = anonymous.get("/api/schema/?format=json")
    assert response.status_code == 401
    assert response.json()["detail"]
    assert api.get("/api/schema/?format=json").status_code == 200


def test_it_lists_tasks_filtered_by_stage_and_repo(api, make_task):
    make_task(stage="analysis", repo="shop")
    wanted = make_task(stage="deploy", repo="shop")
    make_task(stage="deploy", repo="blog")
    response = api.get("/api/tasks/?stage=deploy&repo=shop")
    assert response.status_code == 200
    page = response.json()
    assert page["count"] == 1
    assert [t["work_item_id"] for t in page["results"]] == [str(wanted.work_item_id)]
    assert api.get("/api/tasks/").json()["count"] == 3


def test_it_lists_tasks_filtered_by_their_plane_identifier_in_any_case(api, make_task):
    make_task(identifier="DEMO-3", title="Pay by card")
    make_task(identifier="DEMO-30", title="New theme")
    make_task(title="No identifier yet")
    for query in ("DEMO-3", "demo-3", " Demo-3 "):
        response = api.get("/api/tasks/", {"identifier": query})
        assert response.status_code == 200
        assert [t["title"] for t in response.json()["results"]] == ["Pay by card"], query
    assert api.get("/api/tasks/?identifier=DEMO-4").json()["results"] == []


def test_listing_by_an_unknown_stage_is_a_clear_400(api):
    response = api.get("/api/tasks/?stage=shipped")
    assert response.status_code == 400
    assert "Unknown stage 'shipped'" in response.json()["stage"][0]
    assert response.json()["detail"] == "Invalid input in: stage."


def test_it_shows_one_task_with_its_history(api, make_task):
    task = make_task(stage="analysis")
    post(api, task_url(task, "advance/"), {"stage": "development", "reason": "specified"})
    body = api.get(task_url(task)).json()
    assert body["stage"] == "development"
    assert body["history"] == [
        {
            "cycle": 1,
            "from_stage": "analysis",
            "to_stage": "development",
            "from_phase": "",
            "to_phase": "",
            "caller": "api:ci",
            "reason": "specified",
            "created_at": body["history"][0]["created_at"],
        }
    ]


def test_a_nul_in_a_list_filter_is_a_400_not_a_database_error(api, make_task):
    # The filter went to the database unchecked: PostgreSQL refused the NUL (a 500).
    make_task(repo="shop")
    response = api.get("/api/tasks/", {"repo": "sh\x00op"})
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid input in: repo."


@pytest.mark.parametrize("ident", ["00000000-0000-4000-8000-000000000999", "PROJ-12", "42"])
def test_an_unknown_task_is_a_json_404(api, ident):
    for response in (
        api.get(f"/api/tasks/{ident}/"),
        post(api, f"/api/tasks/{ident}/advance/", {"stage": "development"}),
        post(api, f"/api/tasks/{ident}/deploy/start/"),
    ):
        assert response.status_code == 404
        assert ident in response.json()["detail"]


def test_an_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/nothing-here/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No API endpoint at /api/nothing-here/."}


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    "path", ["/api/tasks", f"/api/tasks/{WORK_ITEM}/advance", "/api/schema", "/api", "/webhooks/x"]
)
def test_a_post_without_the_trailing_slash_is_a_json_404(api, settings, debug, path):
    # APPEND_SLASH cannot redirect a POST without losing its body; with DEBUG on it raised.
    settings.DEBUG = debug
    response = post(api, path, {"stage": "development"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": f"No API endpoint at {path} (paths here end with a slash)."
    }


@pytest.mark.parametrize("debug", [False, True])
def test_errors_under_api_and_webhooks_are_json_whatever_the_debug_setting(
    api, settings, monkeypatch, debug
):
    settings.DEBUG = debug
    api.raise_request_exception = False

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr("pipeline.views.TaskViewSet.get_queryset", broken)
    crashed = api.get("/api/tasks/")
    assert crashed.status_code == 500
    assert crashed.json() == {
        "detail": "Internal server error; the details are in the service's log."
    }
    unknown = api.get("/webhooks/nothing/")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "No API endpoint at /webhooks/nothing/."}
    assert api.get("/admin/nothing/").get("Content-Type", "").startswith("text/html")


def test_a_wrong_method_is_a_json_405(api, make_task):
    response = api.delete(task_url(make_task()))
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


# --- advancing ---------------------------------------------------------------------------


def test_it_advances_a_task(api, make_task):
    task = make_task(stage="code_review")
    response = post(api, task_url(task, "advance/"), {"stage": "deploy"})
    assert response.status_code == 200
    assert response.json()["stage"] == "deploy"
    assert Task.objects.get(pk=task.pk).stage == "deploy"


def test_a_refused_transition_is_a_409_with_the_reason(api, make_task):
    task = make_task(stage="analysis")
    response = post(api, task_url(task, "advance/"), {"stage": "done"})
    assert response.status_code == 409
    assert response.json() == {
        "detail": "analysis -> done is not allowed; from analysis a task can go to "
        "cancelled, development"
    }
    assert StageChange.objects.count() == 0


def test_a_failed_gate_is_a_409_naming_the_gate(api, make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    response = post(api, task_url(task, "advance/"), {"stage": "done"})
    assert response.status_code == 409
    assert response.json()["detail"].startswith("check_deploy_status: ")
    assert Task.objects.get(pk=task.pk).stage == "deploy"


def test_redriving_an_advance_answers_200_and_records_nothing(api, make_task):
    task = make_task(stage="development")
    response = post(api, task_url(task, "advance/"), {"stage": "development"})
    assert response.status_code == 200
    assert response.json()["stage"] == "development"
    assert StageChange.objects.count() == 0


@pytest.mark.parametrize(
    "body,message",
    [
        ({"stage": "shipped"}, '"shipped" is not a valid choice.'),
        ({}, "This field is required."),
        ({"stage": None}, "This field may not be null."),
    ],
)
def test_advancing_to_an_unknown_stage_is_a_400(api, make_task, body, message):
    task = make_task(stage="analysis")
    response = post(api, task_url(task, "advance/"), body)
    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid input in: stage.", "stage": [message]}
    assert Task.objects.get(pk=task.pk).stage == "analysis"


@pytest.mark.parametrize(
    "raw", [b'{"stage": "development"', b"stage=development", b"\xff\xfe", b""]
)
def test_bad_json_is_a_400_and_changes_nothing(api, make_task, raw):
    task = make_task(stage="analysis")
    response = api.post(task_url(task, "advance/"), raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"]
    assert Task.objects.get(pk=task.pk).stage == "analysis"


def test_json_that_is_not_an_object_is_a_400(api, make_task):
    task = make_task(stage="analysis")
    response = api.post(
        task_url(task, "advance/"), '["development"]', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid data. Expected a dictionary, but got list."


# --- deploy phases -----------------------------------------------------------------------


def test_a_deploy_goes_through_the_api_from_request_to_done(api, make_task, client):
    task = make_task(stage="deploy")
    operator = Token.objects.create(
        user=make_user("ops", "pipeline.view_task", "pipeline.approve_deploy")
    )
    as_operator = {"HTTP_AUTHORIZATION": f"Token {operator.key}"}
    answers = [post(api, task_url(task, "deploy/request-approval/"), {"reason": "ready"})]
    answers.append(post(client, task_url(task, "deploy/approve/"), {}, **as_operator))
    answers += [post(api, task_url(task, f"deploy/{step}/")) for step in ("start", "succeed")]
    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert [(a.json()["stage"], a.json()["deploy_phase"]) for a in answers] == [
        ("deploy", "awaiting_approval"),
        ("deploy", "awaiting_approval"),
        ("deploy", "deploying"),
        ("done", None),
    ]
    assert answers[-1].json()["last_deploy"]["outcome"] == "succeeded"
    assert answers[1].json()["deploy_approved_by"] == "api:ops"


def test_the_pipelines_own_token_cannot_approve_its_deploy(api, make_task):
    task = make_task(stage="deploy", deploy_phase="awaiting_approval")
    response = post(api, task_url(task, "deploy/approve/"))
    assert response.status_code == 403
    assert Task.objects.get(pk=task.pk).deploy_approved_at is None


def test_a_failed_deploy_returns_to_development(api, make_task):
    task = make_task(stage="deploy", deploy_phase="deploying")
    response = post(api, task_url(task, "deploy/fail/"), {"reason": "migrations failed"})
    assert response.status_code == 200
    assert (response.json()["stage"], response.json()["deploy_phase"]) == ("development", None)
    assert response.json()["last_deploy"]["outcome"] == "failed"
    assert response.json()["history"][-1]["reason"] == "migrations failed"


@pytest.mark.parametrize(
    "stage,phase,step",
    [
        ("development", "", "request-approval"),
        ("deploy", "", "start"),
        ("deploy", "awaiting_approval", "start"),
        ("deploy", "awaiting_approval", "succeed"),
        ("code_review", "", "fail"),
    ],
)
def test_a_deploy_action_out_of_turn_is_a_409(api, make_task, stage, phase, step):
    task = make_task(stage=stage, deploy_phase=phase)
    response = post(api, task_url(task, f"deploy/{step}/"))
    assert response.status_code == 409
    assert response.json()["detail"]
    assert StageChange.objects.count() == 0


def test_redriving_a_deploy_action_answers_200_and_records_nothing(api, make_task):
    task = make_task(stage="done", deploy_phase="succeeded")
    response = post(api, task_url(task, "deploy/succeed/"))
    assert response.status_code == 200
    assert response.json()["stage"] == "done"
    assert StageChange.objects.count() == 0


def test_an_unknown_deploy_action_is_a_404(api, make_task):
    response = post(api, task_url(make_task(stage="deploy"), "deploy/rollback/"))
    assert response.status_code == 404
    assert "Unknown deploy action 'rollback'" in response.json()["detail"]


# --- schema ------------------------------------------------------------------------------


def test_the_openapi_schema_describes_the_endpoints(api):
    response = api.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/tasks/",
        "/api/tasks/{work_item_id}/",
        "/api/tasks/{work_item_id}/advance/",
        "/api/tasks/{work_item_id}/deploy/{deploy_action}/",
    } <= set(schema["paths"])


def test_the_schema_documents_each_refusal_and_what_inputs_may_be(api):
    schema = api.get("/api/schema/?format=json").json()
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"]["401"]["content"] == error, (method, path)
            assert "403" in operation["responses"], (method, path)
            assert set(operation.get("requestBody", {}).get("content", {})) <= {"application/json"}
    advance = schema["paths"]["/api/tasks/{work_item_id}/advance/"]["post"]
    assert {"200", "400", "401", "403", "404", "409"} == set(advance["responses"])
    assert advance["parameters"][0]["schema"] == {"type": "string", "format": "uuid"}
    days = schema["paths"]["/api/metrics/dora/"]["get"]["parameters"][0]
    assert (days["name"], days["schema"]["minimum"], days["schema"]["maximum"]) == ("days", 1, 366)
    components = schema["components"]["schemas"]
    assert "format" not in components["Deployment"]["properties"]["ci_url"]  # often empty
    assert components["TaskCreate"]["properties"]["title"]["pattern"] == "^[^\\u0000]*$"


def test_a_bearer_header_is_a_401_that_names_the_token_scheme(client, make_task):
    response = client.get("/api/tasks/", HTTP_AUTHORIZATION="Bearer abc123")
    assert response.status_code == 401
    assert "scheme is Token" in response.json()["detail"]
    assert response["WWW-Authenticate"] == "Token"
