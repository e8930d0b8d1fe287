"""Property: every correctly signed body sent to a Git host's endpoint gets an answer below
500, a refusal is a 4xx with a JSON message, and every event accepted is applied, ignored,
stale or refused, never failed: nothing half-applied (on SQLite and PostgreSQL)."""

import json
import uuid
from contextlib import contextmanager

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from git_hosts.apply import process_event
from git_hosts.models import GitEvent, GitRepo
from plane_integration.models import PlaneProject
from tests.git_fixtures import body, forgejo_headers, github_headers, gitlab_headers, load
from tests.test_webhook_properties import any_text, json_values

pytestmark = pytest.mark.django_db

SECRETS = {"github": "gh-secret", "gitlab": "gl-token", "forgejo": "fj-secret"}
PROJECT = "0de00000-0000-4000-8000-0000000000bb"
EVENTS = {
    "github": ["pull_request", "pull_request_review", "deployment_status", "workflow_run"],
    "gitlab": ["Merge Request Hook", "Deployment Hook"],
    "forgejo": ["pull_request", "pull_request_review_rejected"],
}
BASES = {
    "github": [
        "pull_request.opened",
        "deployment_status.success",
        "workflow_run.completed.success",
    ],
    "gitlab": ["merge_request", "deployment"],
    "forgejo": ["pull_request.opened"],
}

bounded = hypothesis_settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
providers = st.sampled_from(list(SECRETS))
texts = st.sampled_from(["DEMO-1", "demo-2 fix", "opened", "closed", "merged", ""]) | any_text


@pytest.fixture
def world(settings, make_task):
    settings.GITHUB_WEBHOOK_SECRET = SECRETS["github"]
    settings.GITLAB_WEBHOOK_SECRET = SECRETS["gitlab"]
    settings.FORGEJO_WEBHOOK_SECRET = SECRETS["forgejo"]
    settings.PLANE_API_URL = ""
    PlaneProject.objects.create(
        project_id=PROJECT, workspace_slug="acme", repo="shop", identifier="DEMO"
    )
    for provider in SECRETS:
        for name in BASES[provider]:
            payload = load(provider, name)
            repository = payload.get("repository") or {}
            path = repository.get("full_name") or payload["project"]["path_with_namespace"]
            GitRepo.objects.get_or_create(
                provider=provider, path=path, defaults={"repo": f"{provider}-{path}"[:200]}
            )
    make_task(identifier="DEMO-1", project_id=PROJECT)
    make_task(identifier="DEMO-2", project_id=PROJECT, stage="code_review")


@contextmanager
def rolled_back():
    """Each example starts from the same database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def post(client, provider: str, event: str, raw: bytes, delivery: str | None = None):
    delivery = delivery if delivery is not None else str(uuid.uuid4())
    if provider == "github":
        headers = github_headers(raw, SECRETS[provider], event, delivery)
    elif provider == "gitlab":
        headers = gitlab_headers(SECRETS[provider], event, delivery)
    else:
        headers = forgejo_headers(raw, SECRETS[provider], event, delivery)
    headers.pop("Content-Type")
    return client.post(
        f"/webhooks/{provider}/", raw, content_type="application/json", headers=headers
    )


def deliver(client, provider: str, event: str, raw: bytes, delivery: str | None = None):
    with rolled_back():
        answer = post(client, provider, event, raw, delivery)
        assert answer.status_code < 500, answer.content
        assert answer["Content-Type"] == "application/json"
        if answer.status_code >= 400:
            assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]
            assert not GitEvent.objects.exists()  # a refusal stores nothing
            return
        pk = answer.json()["event"]
        process_event(pk)
        event_row = GitEvent.objects.get(pk=pk)
        assert event_row.outcome != GitEvent.Outcome.FAILED, event_row.detail
        assert event_row.outcome != GitEvent.Outcome.PENDING


@bounded
@given(provider=providers, value=json_values, data=st.data())
def test_any_signed_json_value_is_answered_below_500(client, world, provider, value, data):
    event = data.draw(st.sampled_from(EVENTS[provider]) | any_text, label="event")
    deliver(client, provider, event, json.dumps(value).encode())


@bounded
@given(provider=providers, raw=st.binary(max_size=1024), data=st.data())
def test_any_signed_bytes_are_answered_below_500(client, world, provider, raw, data):
    deliver(client, provider, data.draw(st.sampled_from(EVENTS[provider])), raw)


def mutate(payload, data, depth=0):
    """Replace some fields of a real payload with any JSON value, anywhere in it."""
    if isinstance(payload, dict):
        for key in list(payload):
            choice = data.draw(st.integers(0, 9), label=f"field {key}")
            if choice == 0:
                payload[key] = data.draw(json_values, label=f"value of {key}")
            elif choice == 1:
                del payload[key]
            elif choice == 2 and depth < 4:
                mutate(payload[key], data, depth + 1)
            elif choice == 3 and isinstance(payload[key], str):
                payload[key] = data.draw(texts, label=f"text of {key}")
    return payload


# Where the bugs hide (a NUL in a field a query uses was one): more examples.
@hypothesis_settings(bounded, max_examples=200)
@given(provider=providers, data=st.data())
def test_real_payloads_with_wrong_typed_missing_or_odd_fields_are_never_half_applied(
    client, world, provider, data
):
    name = data.draw(st.sampled_from(BASES[provider]), label="payload")
    event = {
        "pull_request.opened": "pull_request",
        "deployment_status.success": "deployment_status",
        "workflow_run.completed.success": "workflow_run",
        "merge_request": "Merge Request Hook",
        "deployment": "Deployment Hook",
    }[name]
    payload = mutate(load(provider, name), data)
    if data.draw(st.booleans(), label="names a task"):
        payload["title"] = "DEMO-1"
        if isinstance(payload.get("pull_request"), dict):
            payload["pull_request"]["title"] = "DEMO-1 and demo-2"
        if isinstance(payload.get("object_attributes"), dict):
            payload["object_attributes"]["title"] = "DEMO-2"
    deliver(client, provider, event, json.dumps(payload).encode())  # escapes lone surrogates


@bounded
@given(
    provider=providers,
    delivery=st.text(max_size=300) | st.integers(200, 10_000).map(lambda n: "d" * n),
)
def test_any_delivery_id_is_stored_as_sent_or_refused_with_a_400(client, world, provider, delivery):
    raw = body(load(provider, BASES[provider][0]))
    event = EVENTS[provider][0]
    with rolled_back():
        try:
            answer = post(client, provider, event, raw, delivery)
        except (ValueError, UnicodeError):
            return  # not a header value any HTTP client would send
        assert answer.status_code < 500, answer.content
        if len(delivery) > 200:
            assert answer.status_code == 400
            assert not GitEvent.objects.exists()
