"""POST /webhooks/plane/ over real HTTP: real deliveries, real signatures, the q cluster."""

import json
import os
import threading
import uuid
from pathlib import Path

import pytest
import requests
from django.core.cache import cache
from django.utils import timezone

from pipeline import engine
from pipeline.models import Task
from plane_integration.drain import drain_deliveries
from plane_integration.ingest import reprocess
from plane_integration.models import BoardStatus, PlaneProject, PlaneState, WebhookDelivery
from plane_integration.webhook_payloads import signature
from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES
from tests.qcluster import run_queued_tasks

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "plane-webhooks"
SECRET = "plane_wh_5c7cc737b9ca4addbff1d5c57c88340f"  # the fixtures' README gives it
FIXTURE_BOT = "8938d66c-b3ca-4556-a60f-7efed92c692d"
FIXTURE_PROJECT = "ab63de3a-de3c-4684-b251-d1920ce5807d"
FIXTURE_ITEM = "965752bc-110f-44c5-b119-4cd9510d58eb"
FIXTURE_STATES = [  # the capturing server's project, from the fixtures' README
    ("8b577b16-d407-4379-b388-24ddc116106e", "Backlog", "backlog", True),
    ("92808083-7989-4906-91f5-26392b28d565", "Todo", "unstarted", False),
    ("7dbe69d4-8996-48b5-8889-274cd36196b2", "In Progress", "started", False),
    ("89894a69-6465-4729-aa30-3da4165fc28c", "Done", "completed", False),
    ("17f0ddf3-1cf8-4444-bbee-0c6e16c898e0", "Cancelled", "cancelled", False),
]
HUMAN = {"id": "0a11ce00-0000-4000-8000-000000000002", "display_name": "alice"}
BOT = "b0700000-0000-4000-8000-000000000001"


@pytest.fixture(autouse=True)
def webhook_settings(settings):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_BOT_USER_ID = BOT
    settings.PLANE_API_URL = ""  # no Plane to ask: decisions use the cached states


@pytest.fixture
def hook(live_server):
    return f"{live_server.url}/webhooks/plane/"


def captured() -> list[tuple[str, bytes, dict]]:
    if not FIXTURES.is_dir():
        missing = f"the captured deliveries are not at {FIXTURES}"
        if os.environ.get("CI"):  # CI has shared/ beside the clone: never skip them there
            pytest.fail(missing)
        pytest.skip(missing)
    deliveries = []
    for body_file in sorted(FIXTURES.glob("*.body.raw")):
        name = body_file.name.removesuffix(".body.raw")
        lines = (FIXTURES / f"{name}.headers.txt").read_text().splitlines()[1:]
        headers = dict(line.split(": ", 1) for line in lines if ": " in line)
        for hop_by_hop in ("Host", "Content-Length", "Connection"):
            headers.pop(hop_by_hop, None)
        deliveries.append((name, body_file.read_bytes(), headers))
    return deliveries


def fixture_project() -> PlaneProject:
    project = PlaneProject.objects.create(
        project_id=FIXTURE_PROJECT, workspace_slug="local", repo="shop"
    )
    PlaneState.objects.bulk_create(
        PlaneState(project=project, state_id=i, name=n, group=g, is_default=d, sequence=k)
        for k, (i, n, g, d) in enumerate(FIXTURE_STATES)
    )
    project.states_refreshed_at = project.created_at
    project.save()
    return project


def pipeline_project() -> tuple[PlaneProject, dict[str, str]]:
    """A project with the pipeline's statuses; returns it and its state ids by name."""
    project = PlaneProject.objects.create(
        project_id=uuid.uuid4(), workspace_slug="acme", repo="shop"
    )
    ids = {}
    for n, (name, group) in enumerate(DEFAULT_STATES + PIPELINE_STATES):
        ids[name] = str(uuid.uuid4())
        PlaneState.objects.create(
            project=project, state_id=ids[name], name=name, group=group, sequence=n
        )
    project.states_refreshed_at = project.created_at
    project.save()
    return project, ids


def issue_update(project, state_id, *, item=None, field="state", actor=HUMAN, action="updated"):
    item = item or str(uuid.uuid4())
    return {
        "event": "issue",
        "action": action,
        "webhook_id": str(uuid.uuid4()),
        "workspace_id": str(uuid.uuid4()),
        "data": {"id": item, "name": "Fix login", "project": str(project.project_id)},
        "activity": {
            "field": field,
            "old_value": str(uuid.uuid4()),
            "new_value": state_id,
            "actor": actor,
        },
    }


def send(hook, payload=None, *, raw=None, secret=SECRET, sign=True, sig=None, headers=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", "X-Plane-Event": "issue"}
    sent["X-Plane-Delivery"] = str(uuid.uuid4())
    if sign:
        sent["X-Plane-Signature"] = sig or signature(body, secret)
    return requests.post(hook, data=body, headers={**sent, **(headers or {})}, timeout=10)


# --- the captured deliveries ---------------------------------------------------------------


def test_the_real_deliveries_verify_and_are_stored_as_the_bots_echoes(hook, settings):
    settings.PLANE_BOT_USER_ID = FIXTURE_BOT
    fixture_project()
    for name, body, headers in captured():
        answer = requests.post(hook, data=body, headers=headers, timeout=10)
        assert answer.status_code == 202, (name, answer.text)
        assert answer.json()["state"] == "ignored"
    assert run_queued_tasks() == 0  # echoes are never acted on
    assert WebhookDelivery.objects.count() == 6
    assert set(WebhookDelivery.objects.values_list("state", flat=True)) == {"ignored"}
    assert all("echo" in d.reason for d in WebhookDelivery.objects.all())
    stored = WebhookDelivery.objects.get(delivery_id="515d8cbb-13ee-426e-87fe-734f3cd5dbd8")
    assert (stored.event, stored.action, str(stored.work_item_id)) == (
        "issue_comment",
        "created",
        FIXTURE_ITEM,
    )
    assert bytes(stored.body) == (FIXTURES / f"{captured()[2][0]}.body.raw").read_bytes()
    # Plane retries with the same body and a new delivery id: stored once.
    for _, body, headers in captured():
        retry = {**headers, "X-Plane-Delivery": str(uuid.uuid4())}
        again = requests.post(hook, data=body, headers=retry, timeout=10)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
    assert WebhookDelivery.objects.count() == 6
    assert Task.objects.count() == 0


def test_the_real_deliveries_as_a_humans_moves_start_only_on_to_analyse(hook, settings):
    settings.PLANE_BOT_USER_ID = "00000000-0000-4000-8000-00000000b0b0"
    fixture_project()  # no "To Analyse" state: its fallback, Todo, is the control
    for _name, body, headers in captured():
        assert requests.post(hook, data=body, headers=headers, timeout=10).status_code == 202
    run_queued_tasks()
    assert not WebhookDelivery.objects.filter(state="pending").exists()
    outcome = {d.delivery_id: (d.state, d.reason) for d in WebhookDelivery.objects.all()}
    assert outcome["6e282d11-f418-4dbb-a939-44639084d922"] == (
        "ignored",
        "created in a backlog status: not a control",
    )
    assert outcome["b6afe63a-f90e-4531-b317-db452374a99b"][1] == (
        "moved in a started status: not a control"
    )
    assert outcome["515d8cbb-13ee-426e-87fe-734f3cd5dbd8"][1] == (
        "issue_comment events are not board controls"
    )
    assert outcome["7d691b52-8941-477d-be32-d285b759facb"][1] == (
        "moved in a completed status: not a control"
    )
    assert (
        outcome["828ecd61-28b4-4e5c-b95b-0f88cea2e37c"][1]
        == "priority changed: not a board control"
    )
    assert outcome["acead68d-d8c7-426f-b44e-d9b51bd0ddee"] == (
        "processed",
        "moved to To Analyse: task created in analysis",
    )
    task = Task.objects.get()
    assert (str(task.work_item_id), task.stage, task.title, task.repo) == (
        FIXTURE_ITEM,
        "analysis",
        "First real-Plane issue",
        "shop",
    )


# --- refused at the edge -------------------------------------------------------------------


@pytest.mark.parametrize(
    "how",
    ["wrong signature", "missing signature", "wrong secret", "truncated body", "no secret set"],
)
def test_an_unauthentic_delivery_is_a_403_and_nothing_is_stored(hook, settings, how):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])
    body = json.dumps(payload).encode()
    if how == "wrong signature":
        answer = send(hook, raw=body, sig="0" * 64)
    elif how == "missing signature":
        answer = send(hook, raw=body, sign=False)
    elif how == "wrong secret":
        answer = send(hook, raw=body, secret="plane_wh_" + "f" * 32)
    elif how == "truncated body":
        answer = send(hook, raw=body[:-10], sig=signature(body, SECRET))
    else:
        settings.PLANE_WEBHOOK_SECRET = ""
        answer = send(hook, raw=body)
    assert answer.status_code == 403
    assert answer.json()["detail"]
    if how == "missing signature":
        assert answer.json()["detail"] == "The X-Plane-Signature header is missing."
    elif how != "no secret set":
        assert answer.json()["detail"] == "The X-Plane-Signature does not match."
    assert WebhookDelivery.objects.count() == 0
    assert Task.objects.count() == 0


@pytest.mark.parametrize(
    "raw,message",
    [
        (b'{"event": "issue", "action": "upd', "the body is not valid JSON"),
        (b"event=issue&action=updated", "the body is not valid JSON"),
        (b"\xff\xfe{}", "the body is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not valid JSON: it is nested too deeply"),
        (b'{"event": "issue", "action": "updated", "data": ' * 20_000, "nested too deeply"),
        (b"[1, 2, 3]", "the body is JSON but not an object"),
        (b'{"hello": "world"}', "not a Plane webhook: missing event, action, data"),
        (b'{"event": "issue", "action": "updated", "data": []}', "data must be an object"),
        (b'{"event": "issue", "action": ["updated"], "data": {}}', "action must be text"),
        (b'{"version": 2, "event_id": "", "event": "workitem.updated", "data": {}}', "v2"),
    ],
)
def test_an_authentic_body_that_is_not_a_webhook_is_a_400(hook, raw, message):
    answer = send(hook, raw=raw)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert WebhookDelivery.objects.count() == 0


def test_an_oversize_body_is_a_413_and_nothing_is_stored(hook, settings):
    settings.PLANE_WEBHOOK_MAX_BYTES = 2048
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])
    payload["data"]["description_html"] = "x" * 4096
    answer = send(hook, payload)
    assert answer.status_code == 413
    assert "at most 2048" in answer.json()["detail"]
    assert WebhookDelivery.objects.count() == 0


def test_a_non_ascii_signature_is_a_403_not_a_crash(hook):
    answer = send(hook, raw=b'{"event": "issue"}', sig="\u00e9" * 64)
    assert answer.status_code == 403
    assert WebhookDelivery.objects.count() == 0


def test_only_post_is_accepted(hook):
    assert requests.get(hook, timeout=10).status_code == 405


@pytest.mark.parametrize("debug", [False, True])
def test_the_path_is_accepted_without_its_trailing_slash_too(live_server, settings, debug):
    # A redirect to add the slash would lose the body; with DEBUG on Django refused it (500).
    settings.DEBUG = debug
    project, ids = pipeline_project()
    answer = send(f"{live_server.url}/webhooks/plane", issue_update(project, ids["To Analyse"]))
    assert (answer.status_code, answer.json()["status"]) == (202, "accepted")
    run_queued_tasks()
    assert Task.objects.count() == 1


@pytest.mark.parametrize(
    "field,envelope",
    [
        ("action", {"action": "\ud800"}),
        ("action", {"action": "upd\x00ated"}),
        ("event", {"event": "\udfff"}),
        ("event", {"event": "is\x00sue"}),
        ("event", {"event": "e" * 51}),
        ("event_id", {"version": 2, "event_id": "e" * 300, "event": "workitem.updated"}),
        ("event_id", {"version": 2, "event_id": "\x00", "event": "workitem.updated"}),
        ("event_id", {"version": 2, "event_id": True, "event": "workitem.updated"}),
        ("event", {"version": 2, "event_id": "1", "event": "workitem.up\ud800dated"}),
        ("entity_type", {"version": 2, "event_id": "1", "event": "x.y", "entity_type": "\x00"}),
    ],
)
def test_an_envelope_field_that_cannot_be_stored_is_a_400_naming_it(hook, field, envelope):
    project, ids = pipeline_project()
    payload = {**issue_update(project, ids["To Analyse"]), **envelope}
    answer = send(hook, raw=json.dumps(payload).encode())  # json.dumps escapes them: valid JSON
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("not a Plane")
    assert f" {field} " in answer.json()["detail"]
    assert WebhookDelivery.objects.count() == 0


@pytest.mark.parametrize("name", ["Fix\x00login", "Fix \ud800 login", "Fix \udc00\ud800 login"])
def test_a_name_no_column_can_hold_is_stored_as_sent_and_processed(hook, name):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])
    payload["data"]["name"] = name
    payload["activity"]["actor"] = {"id": HUMAN["id"], "display_name": f"al\x00ice {'x' * 300}"}
    body = json.dumps(payload).encode()
    assert send(hook, raw=body).status_code == 202
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert bytes(delivery.body) == body  # exactly as signed
    assert (delivery.state, delivery.attempts) == ("processed", 1)
    task = Task.objects.get()
    assert task.title.startswith("Fix") and "\ufffd" in task.title
    assert "\x00" not in task.title


def test_a_to_analyse_move_of_a_work_item_whose_id_is_not_a_uuid_is_ignored(hook):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"], item="not-a-uuid")
    send(hook, payload)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("ignored", 1)
    assert "not a UUID" in delivery.reason
    assert Task.objects.count() == 0


def test_a_failure_that_cannot_change_is_recorded_once_and_not_retried(hook, monkeypatch):
    from django_q.models import OrmQ

    project, ids = pipeline_project()

    def unstorable(**kwargs):
        raise ValueError("a value no column takes")

    monkeypatch.setattr("plane_integration.control_actions.engine.create_task", unstorable)
    send(hook, issue_update(project, ids["To Analyse"]))
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.reason == "ValueError: a value no column takes"
    assert delivery.retry_at is None  # not worked off again
    assert OrmQ.objects.count() == 0
    assert drain_deliveries() == {}
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("failed", 1)


def test_a_failure_that_may_pass_is_worked_off_again_after_q_retry(hook, plane, settings):
    project, ids = pipeline_project()
    send(hook, issue_update(project, str(uuid.uuid4())))  # a state the cache does not know
    plane.fail_for(10, status=500)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    waited = (delivery.retry_at - timezone.now()).total_seconds()
    assert settings.Q_CLUSTER["retry"] - 5 < waited <= settings.Q_CLUSTER["retry"]
    assert drain_deliveries() == {}  # not due yet
    plane.fail_for(0)
    WebhookDelivery.objects.update(retry_at=timezone.now())  # Q_RETRY has passed
    assert drain_deliveries() == {"ignored": 1}  # read the states: an unknown state is drift
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.retry_at) == ("ignored", 2, None)


def test_a_failure_that_may_pass_is_given_up_after_q_max_attempts(hook, plane, settings):
    project, ids = pipeline_project()
    send(hook, issue_update(project, str(uuid.uuid4())))
    plane.fail_for(1000, status=500)
    run_queued_tasks()
    for _ in range(settings.Q_CLUSTER["max_attempts"] * 2):
        WebhookDelivery.objects.filter(retry_at__isnull=False).update(retry_at=timezone.now())
        cache.clear()  # the states' negative cache would hold the read back
        PlaneProject.objects.update(states_requested_at=None)
        drain_deliveries()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.retry_at) == ("failed", None)
    assert delivery.attempts == settings.Q_CLUSTER["max_attempts"]


# --- what deliveries do ------------------------------------------------------------------


def test_a_move_to_to_analyse_creates_the_task(hook):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])
    answer = send(hook, payload)
    assert (answer.status_code, answer.json()["status"]) == (202, "accepted")
    run_queued_tasks()
    task = Task.objects.get(work_item_id=payload["data"]["id"])
    assert (task.stage, task.repo) == ("analysis", "shop")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("processed", 1)
    assert BoardStatus.objects.get(task=task).desired_key == "analysis"  # the board follows


@pytest.mark.parametrize("old_style", [True, False])
def test_old_servers_update_action_and_the_web_apps_state_id_field(hook, old_style):
    project, ids = pipeline_project()
    if old_style:
        payload = issue_update(project, ids["To Analyse"], action="update")
    else:
        payload = issue_update(project, ids["To Analyse"], field="state_id")
    assert send(hook, payload).status_code == 202
    run_queued_tasks()
    assert Task.objects.filter(work_item_id=payload["data"]["id"], stage="analysis").exists()


def test_a_work_item_created_in_to_analyse_counts_as_moved_there(hook):
    project, ids = pipeline_project()
    payload = issue_update(project, None, action="created", field=None)
    payload["activity"]["new_value"] = None
    payload["data"]["state"] = {"id": ids["To Analyse"], "name": "To Analyse", "group": "unstarted"}
    send(hook, payload)
    run_queued_tasks()
    assert Task.objects.get().stage == "analysis"


def test_the_v2_format_is_accepted_and_deduplicated_by_event_id(hook):
    project, ids = pipeline_project()
    item, event_id = str(uuid.uuid4()), str(uuid.uuid4())

    def v2(delivery_id):
        return {
            "version": 2,
            "delivery_id": delivery_id,
            "event_id": event_id,
            "entity_type": "workitem",
            "event": "workitem.updated",
            "data": {
                "id": item,
                "project_id": str(project.project_id),
                "state_id": ids["To Analyse"],
            },
            "previous_attributes": {"state_id": ids["Todo"]},
            "actor": HUMAN,
        }

    first = send(hook, v2(str(uuid.uuid4())))
    again = send(hook, v2(str(uuid.uuid4())))  # another body, the same event
    assert (first.status_code, again.status_code, again.json()["status"]) == (202, 200, "duplicate")
    run_queued_tasks()
    assert WebhookDelivery.objects.get().dedupe_key == f"v2:{event_id}"
    assert Task.objects.get(work_item_id=item).stage == "analysis"


def test_a_bot_echo_is_stored_as_ignored_and_never_acted_on(hook):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"], actor={"id": BOT, "display_name": "bot"})
    answer = send(hook, payload)
    assert (answer.status_code, answer.json()["state"]) == (202, "ignored")
    assert run_queued_tasks() == 0
    assert Task.objects.count() == 0


def test_a_move_to_a_cancelled_status_cancels_the_task(hook, make_task):
    project, ids = pipeline_project()
    task = make_task(stage="development", project_id=project.project_id)
    send(hook, issue_update(project, ids["Cancelled"], item=str(task.work_item_id)))
    run_queued_tasks()
    task.refresh_from_db()
    assert task.stage == "cancelled"
    assert task.history.get().caller == "plane:alice"


@pytest.mark.parametrize("terminal", ["done", "cancelled"])
def test_a_move_to_to_analyse_reopens_a_finished_task(hook, make_task, terminal):
    project, ids = pipeline_project()
    task = make_task(stage=terminal, project_id=project.project_id)
    send(hook, issue_update(project, ids["To Analyse"], item=str(task.work_item_id)))
    run_queued_tasks()
    task.refresh_from_db()
    assert (task.stage, task.cycle) == ("analysis", 2)


def test_a_task_in_progress_is_left_alone(hook, make_task):
    project, ids = pipeline_project()
    task = make_task(stage="code_review", project_id=project.project_id)
    send(hook, issue_update(project, ids["To Analyse"], item=str(task.work_item_id)))
    run_queued_tasks()
    task.refresh_from_db()
    assert task.stage == "code_review"
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "ignored" and "left alone" in delivery.reason


def test_any_other_move_is_drift_but_tells_the_board_what_plane_shows(hook, make_task):
    project, ids = pipeline_project()
    task = make_task(stage="code_review", project_id=project.project_id)
    BoardStatus.objects.create(task=task, desired_key="code_review", desired_at=task.created_at)
    send(hook, issue_update(project, ids["Deploying"], item=str(task.work_item_id)))
    run_queued_tasks()
    task.refresh_from_db()
    assert task.stage == "code_review"  # indication, not control
    assert str(BoardStatus.objects.get(task=task).shown_state_id) == ids["Deploying"]


def test_a_late_delivery_does_not_rewrite_what_the_board_was_last_seen_showing(
    hook, make_task, admin_client
):
    project, ids = pipeline_project()
    task = make_task(stage="code_review", project_id=project.project_id)
    BoardStatus.objects.create(task=task, desired_key="code_review", desired_at=task.created_at)
    item = str(task.work_item_id)
    newer = issue_update(project, ids["Code Review"], item=item)
    newer["data"]["updated_at"] = "2026-12-04T10:00:05.000000Z"
    older = issue_update(project, ids["Deploying"], item=item)
    older["data"]["updated_at"] = "2026-12-04T10:00:01.000000Z"
    send(hook, newer)
    run_queued_tasks()
    send(hook, older)  # Plane's retry of an earlier move, arriving last
    run_queued_tasks()

    row = BoardStatus.objects.get(task=task)
    assert str(row.shown_state_id) == ids["Code Review"]
    assert row.shown_updated_at.isoformat() == "2026-12-04T10:00:05+00:00"
    board = admin_client.get(f"/api/tasks/{item}/board/").json()
    assert board["shown"] == "code_review"


def test_a_persons_drift_is_put_back_at_once_and_after_three_times_left_to_the_operator(
    hook, make_task, admin_client, monkeypatch
):
    from operations import verdict
    from plane_integration.models import ReconcileRepair

    project, ids = pipeline_project()
    task = make_task(stage="code_review", project_id=project.project_id, identifier="DEMO-7")
    BoardStatus.objects.create(task=task, desired_key="code_review", desired_at=task.created_at)
    item = str(task.work_item_id)
    for n, state in enumerate(["Deploying", "Todo", "Deploying"], start=1):
        send(hook, issue_update(project, ids[state], item=item))
        run_queued_tasks()  # the delivery, then the sync it asked for
        row = BoardStatus.objects.get(task=task)
        assert row.next_attempt_at is None and row.drift_left_at is None  # sent (or tried)
        assert ReconcileRepair.objects.filter(kind="reasserted").count() == n
    assert "the sync puts it back" in WebhookDelivery.objects.first().reason

    send(hook, issue_update(project, ids["Todo"], item=item))  # the fourth time in an hour
    run_queued_tasks()

    row = BoardStatus.objects.get(task=task)
    assert row.drift_left_at is not None and row.next_attempt_at is None  # not fought
    assert ReconcileRepair.objects.filter(kind="reasserted").count() == 3
    monkeypatch.setattr(verdict, "check_cluster", lambda: {"ok": True})
    problem = next(p for p in verdict.problems() if p.key == "person_drift")
    assert problem.severity == "amber" and "a person keeps moving demo-7" in problem.text.lower()
    page = admin_client.get("/admin/").content.decode()
    assert 'data-problem="person_drift"' in page
    assert admin_client.get(problem.url).status_code == 200

    engine.advance_stage(task, "deploy", caller="ci")  # a new truth: worth showing again
    assert BoardStatus.objects.get(task=task).drift_left_at is None


def test_an_item_left_to_the_operator_and_moved_back_is_put_back_again(hook, make_task):
    """The dashboard asks the operator to move the item back in Plane: once it shows the
    truth again, a person's next move is fought as before."""
    from plane_integration.models import ReconcileRepair

    project, ids = pipeline_project()
    task = make_task(stage="code_review", project_id=project.project_id)
    BoardStatus.objects.create(
        task=task,
        desired_key="code_review",
        desired_at=task.created_at,
        drift_left_at=task.created_at,
    )
    item = str(task.work_item_id)
    send(hook, issue_update(project, ids["Todo"], item=item))  # still left: not fought
    run_queued_tasks()
    assert BoardStatus.objects.get(task=task).next_attempt_at is None

    send(hook, issue_update(project, ids["Code Review"], item=item))  # the operator's move
    run_queued_tasks()
    assert BoardStatus.objects.get(task=task).drift_left_at is None
    assert "moved back" in WebhookDelivery.objects.order_by("-id").first().reason

    send(hook, issue_update(project, ids["Todo"], item=item))  # a person again: fought
    run_queued_tasks()
    assert ReconcileRepair.objects.filter(kind="reasserted").count() == 1
    assert "the sync puts it back" in WebhookDelivery.objects.order_by("-id").first().reason


def test_a_delivery_for_an_unknown_project_is_ignored_with_why(hook):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])
    payload["data"]["project"] = str(uuid.uuid4())
    send(hook, payload)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "ignored" and "not a configured Plane project" in delivery.reason


def test_a_processing_failure_is_kept_with_its_reason_and_can_be_processed_again(hook, monkeypatch):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["To Analyse"])

    def broken(**kwargs):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr("plane_integration.control_actions.engine.create_task", broken)
    send(hook, payload)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("failed", 1)
    assert delivery.reason == "RuntimeError: database hiccup"
    assert Task.objects.count() == 0  # nothing half-written
    monkeypatch.undo()
    assert reprocess(WebhookDelivery.objects.all()) == 1
    run_queued_tasks()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == ("processed", 2)
    assert Task.objects.count() == 1


def test_plane_calls_made_for_a_failing_delivery_still_count_in_the_budget(hook, plane):
    from plane_integration.models import PlaneRateBudget

    project, ids = pipeline_project()
    send(hook, issue_update(project, str(uuid.uuid4())))  # a state the cache does not know
    plane.fail_for(10, status=500)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == "failed" and "cannot read the states" in delivery.reason
    sent = len(plane.requests)
    assert sent >= 1
    assert len(PlaneRateBudget.objects.get().sent_at) == sent  # none lost to the rollback


def test_the_stand_ins_webhooks_drive_the_service(hook, plane):
    """A human moves a work item to To Analyse in (stand-in) Plane: the task starts."""
    project_id = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")
    item = plane.add_work_item("acme", project_id, "From the board", state="Todo")
    webhook = plane.register_webhook(hook, SECRET)
    plane.set_state(item, "To Analyse")
    assert plane.flush_webhooks(timeout=10)
    log = plane.webhook_log
    assert [status for status, _, _ in log] == [202], log
    # The board sync's PATCH below makes Plane send an echo; on SQLite the live server's
    # thread shares the test's connection, and its request racing the cluster's commit
    # fails one or the other ("SQL statements in progress"). The echo is not this test's.
    plane.unregister_webhook(webhook)
    run_queued_tasks()
    task = Task.objects.get(work_item_id=item)
    assert (task.stage, task.title) == ("analysis", "From the board")


# --- admin ---------------------------------------------------------------------------------


def test_the_admin_lists_deliveries_shows_the_payload_and_processes_again(hook, admin_client):
    project, ids = pipeline_project()
    payload = issue_update(project, ids["Done"])
    send(hook, payload)
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get()
    listing = admin_client.get(
        "/admin/plane_integration/webhookdelivery/?state=ignored&event=issue"
    )
    assert listing.status_code == 200
    assert list(listing.context["cl"].result_list) == [delivery]
    found = admin_client.get(f"/admin/plane_integration/webhookdelivery/?q={payload['data']['id']}")
    assert list(found.context["cl"].result_list) == [delivery]
    page = admin_client.get(f"/admin/plane_integration/webhookdelivery/{delivery.pk}/change/")
    assert "&quot;new_value&quot;: &quot;" in page.content.decode()  # indented, readable JSON
    admin_client.post(
        "/admin/plane_integration/webhookdelivery/",
        {"action": "process_again", "_selected_action": [delivery.pk]},
    )
    delivery.refresh_from_db()
    assert (delivery.state, delivery.reason) == ("pending", "queued again by an operator")


# --- concurrency ---------------------------------------------------------------------------


@pytest.mark.postgres
def test_fifty_copies_at_once_make_one_delivery_and_one_task(hook):
    project, ids = pipeline_project()
    body = json.dumps(issue_update(project, ids["To Analyse"])).encode()
    barrier = threading.Barrier(50)
    answers = []

    def deliver():
        barrier.wait()
        # The test server's listen backlog is small (5); like Plane, resend what never landed.
        for _ in range(10):
            try:
                answers.append(send(hook, raw=body).status_code)
                return
            except requests.ConnectionError:
                continue

    threads = [threading.Thread(target=deliver) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * 49 + [202]
    run_queued_tasks()
    assert WebhookDelivery.objects.count() == 1
    assert WebhookDelivery.objects.get().state == "processed"
    assert Task.objects.count() == 1


@pytest.mark.postgres
def test_two_deliveries_starting_one_work_item_at_once_record_one_creation(hook, monkeypatch):
    from plane_integration.ingest import process_delivery
    from tests.concurrency import at_once

    project, ids = pipeline_project()
    item = str(uuid.uuid4())
    moved = issue_update(project, ids["To Analyse"], item=item)
    created = issue_update(project, None, item=item, action="created", field=None)
    created["data"]["state"] = {"id": ids["To Analyse"], "group": "unstarted"}
    for payload in (moved, created):
        assert send(hook, payload).status_code == 202
    # Both read "no task yet" before either commits, as two workers at once may.
    monkeypatch.setattr(Task.objects, "for_work_item", lambda work_item_id: None)
    pks = iter(list(WebhookDelivery.objects.values_list("pk", flat=True)))
    at_once(lambda: process_delivery(next(pks)), count=2)
    reasons = list(WebhookDelivery.objects.values_list("reason", flat=True))
    assert sum(reason.endswith("task created in analysis") for reason in reasons) == 1
    assert sum(reason.endswith("created meanwhile: left alone") for reason in reasons) == 1
    assert Task.objects.count() == 1
