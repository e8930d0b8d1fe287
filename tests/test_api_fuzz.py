"""Fuzz: schemathesis drives every operation of the pipeline API's OpenAPI schema over real
HTTP, with a token, on tasks in every stage: no 5xx, every refusal a 4xx with a JSON
message, every answer as the schema says (issue 14)."""

import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    negative_data_rejection,
    positive_data_acceptance,
)

from tests.conftest import PROJECT, make_user

pytestmark = pytest.mark.django_db(transaction=True)

# Bounded and derandomized, so CI is repeatable and lean: examples per operation and mode.
bounded = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Each task's way to its stage through the API, so path parameters name tasks in every
# stage and deploy phase, with history, deployments and board rows behind them.
TO_DEPLOY = ["advance:development", "advance:code_review", "advance:deploy"]
RUNNING = [*TO_DEPLOY, "deploy/request-approval", "deploy/approve", "deploy/start"]
WAYS = {
    "analysis": [],
    "development": TO_DEPLOY[:1],
    "code_review": TO_DEPLOY[:2],
    "awaiting_approval": [*TO_DEPLOY, "deploy/request-approval"],
    "deploying": RUNNING,
    "done": [*RUNNING, "deploy/succeed"],
    "failed": [*RUNNING, "deploy/fail"],
    "cancelled": ["advance:cancelled"],
}


# Registered, so call_and_validate runs it beside schemathesis' own checks.
@schemathesis.check
def refusals_are_json_with_a_message(ctx, response, case) -> None:
    """Every error is `{"detail": "..."}` (plus field errors)."""
    if not 400 <= response.status_code < 500:
        return
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), (
        f"{response.status_code} answered as {content_type!r}: {response.content[:200]!r}"
    )
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("detail"), str) and body["detail"], (
        f"{response.status_code} without a message in `detail`: {body!r}"
    )


def drive(base: str, auth: dict, name: str, steps: list[str]) -> str:
    # Fixed ids, so a derandomized run sends the same requests every time.
    work_item_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"stageboard-fuzz/{name}"))
    created = requests.post(
        f"{base}/api/tasks/",
        json={"work_item_id": work_item_id, "project_id": PROJECT, "title": name, "repo": "shop"},
        headers=auth,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    for step in steps:
        if step.startswith("advance:"):
            url, body = "advance/", {"stage": step.removeprefix("advance:")}
        else:
            url, body = f"{step}/", {"commit_sha": "abc1234"} if step == "deploy/start" else {}
        answer = requests.post(
            f"{base}/api/tasks/{work_item_id}/{url}", json=body, headers=auth, timeout=10
        )
        assert answer.status_code == 200, (step, answer.text)
    return work_item_id


@pytest.fixture
def api_world(live_server):
    """A token allowed everything, and the ids of tasks it drove into every stage."""
    user = make_user(
        "fuzzer",
        "pipeline.view_task",
        "pipeline.add_task",
        "pipeline.change_task",
        "pipeline.approve_deploy",
    )
    auth = {"Authorization": f"Token {Token.objects.create(user=user).key}"}
    ids = [drive(live_server.url, auth, name, steps) for name, steps in WAYS.items()]
    return live_server.url, auth, ids


def cases(operation, mode: GenerationMode, ids: list[str]):
    """The operation's generated cases; those with a task in the path name an existing
    task as often as a generated (missing) one."""
    generated = operation.as_strategy(mode)
    if not any(p.name == "work_item_id" for p in operation.path_parameters):
        return generated
    existing = [operation.as_strategy(mode, path_parameters={"work_item_id": i}) for i in ids]
    return generated | st.one_of(existing)


def excluded(case, auth_probed: set[str]) -> list:
    """Checks that would fail the API for what it means to do, or repeat themselves.

    Django reads a query string leniently, as browsers and scripts expect: the last of a
    repeated parameter wins and an empty one is absent (`?stage=` lists every stage). A
    query negated only that way is answered 200, which the check calls accepting invalid
    data; a negated body or path must still be refused. A schema cannot say all a valid
    value may still be refused for (a date-time before year 1 in UTC): such a refusal is a
    400 with a message, which the other checks hold to the contract. And whether an
    operation wants a token is one fact: its three probes run once per operation, not on
    every success (they tripled the requests)."""
    checks = [positive_data_acceptance]
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.QUERY):
        checks.append(negative_data_rejection)
    if case.operation.label in auth_probed:
        checks.append(ignored_auth)
    return checks


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_below_500_and_refuses_with_a_json_message(api_world, mode):
    base, auth, ids = api_world
    schema = schemathesis.openapi.from_url(f"{base}/api/schema/?format=json", headers=auth)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9  # the schema maps the whole API, so all of it is fuzzed
    auth_probed: set[str] = set()

    for operation in operations:

        @bounded
        @given(case=cases(operation, mode, ids))
        def answers_as_the_schema_says(case):
            skipped = excluded(case, auth_probed)
            answer = case.call_and_validate(base_url=base, headers=auth, excluded_checks=skipped)
            if 200 <= answer.status_code < 300:
                auth_probed.add(case.operation.label)

        answers_as_the_schema_says()
