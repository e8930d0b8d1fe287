"""Property: every correctly signed body gets an answer below 500, and every delivery
that is accepted is processed or ignored, never failed (on SQLite and PostgreSQL)."""

import json
import uuid
from contextlib import contextmanager

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from plane_integration.ingest import process_delivery
from plane_integration.models import PlaneProject, PlaneState, WebhookDelivery
from plane_integration.webhook_payloads import signature

pytestmark = pytest.mark.django_db

SECRET = "plane_wh_0123456789abcdef0123456789abcdef"
PROJECT = "5e1ec7ed-0000-4000-8000-000000000001"
TO_ANALYSE = "5e1ec7ed-0000-4000-8000-0000000000a1"
CANCELLED = "5e1ec7ed-0000-4000-8000-0000000000c1"

# Bounded so the suite stays fast; each example is one request (and one processing).
bounded = hypothesis_settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# st.text() never yields surrogates; Plane's JSON can carry them (as escapes), and NUL.
chars = st.characters(exclude_categories=()) | st.sampled_from(["\x00", "\ud800", "\udc00"])
any_text = (
    st.lists(chars, max_size=30).map("".join)
    | st.integers(min_value=40, max_value=400).map(lambda n: "e" * n)  # beyond a column
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
ids = st.sampled_from([PROJECT, TO_ANALYSE, CANCELLED]) | st.uuids().map(str) | json_values
names = st.sampled_from(["issue", "workitem", "issue_comment", "update", "updated", "created"])
texts = names | any_text
v1 = st.fixed_dictionaries(
    {"event": texts, "action": texts, "data": st.dictionaries(any_text, json_values)},
    optional={
        "activity": st.fixed_dictionaries(
            {},
            optional={
                "field": st.sampled_from(["state", "state_id"]) | json_values,
                "new_value": ids,
                "actor": json_values | st.fixed_dictionaries({"id": ids, "display_name": texts}),
            },
        )
        | json_values
    },
).map(lambda p: {**p, "data": {"id": str(uuid.uuid4()), "project": PROJECT, **p["data"]}})
v2 = st.fixed_dictionaries(
    {
        "version": json_values,
        "event_id": st.uuids().map(str) | json_values,
        "event": st.sampled_from(["workitem.updated", "workitem.created"]) | any_text,
        "data": st.fixed_dictionaries(
            {"id": st.uuids().map(str) | ids, "project_id": ids, "state_id": ids, "name": texts}
        ),
    },
    optional={"previous_attributes": json_values, "actor": json_values, "entity_type": texts},
)


@pytest.fixture
def world(settings):
    settings.PLANE_WEBHOOK_SECRET = SECRET
    settings.PLANE_BOT_USER_ID = ""
    settings.PLANE_API_URL = ""  # decisions come from the cached states below
    project = PlaneProject.objects.create(project_id=PROJECT, workspace_slug="acme", repo="shop")
    for state_id, name, group in [
        (TO_ANALYSE, "To Analyse", "unstarted"),
        (CANCELLED, "Cancelled", "cancelled"),
    ]:
        PlaneState.objects.create(project=project, state_id=state_id, name=name, group=group)
    project.states_refreshed_at = project.created_at
    project.save()


@contextmanager
def rolled_back():
    """Each example starts from the same database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def deliver(client, body: bytes) -> None:
    with rolled_back():
        answer = client.post(
            "/webhooks/plane/",
            data=body,
            content_type="application/json",
            HTTP_X_PLANE_SIGNATURE=signature(body, SECRET),
            HTTP_X_PLANE_DELIVERY=str(uuid.uuid4()),
        )
        assert answer.status_code < 500, answer.content
        assert answer["Content-Type"] == "application/json"
        if answer.status_code == 202 and answer.json()["state"] == "pending":
            pk = answer.json()["delivery"]
            process_delivery(pk)
            delivery = WebhookDelivery.objects.get(pk=pk)
            assert delivery.state in ("processed", "ignored"), delivery.reason


@bounded
@given(value=json_values)
def test_any_signed_json_value_is_answered_below_500(client, world, value):
    deliver(client, json.dumps(value).encode())


@bounded
@given(raw=st.binary(max_size=2048))
def test_any_signed_bytes_are_answered_below_500(client, world, raw):
    deliver(client, raw)


@bounded
@given(payload=v1 | v2)
def test_any_signed_webhook_shaped_body_is_answered_and_processed(client, world, payload):
    deliver(client, json.dumps(payload).encode())


# --- numbers past any column, nesting past any parser, and what a refusal says -------------

huge_numbers = (
    st.integers(min_value=2**63, max_value=10**4000)
    | st.integers(min_value=-(10**4000), max_value=-(2**63))
    | st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "-Infinity", "1" * 5000, "0.0e-999"])
)


def number_literal(value) -> str:
    return value if isinstance(value, str) else str(value)


@bounded
@given(number=huge_numbers, where=st.sampled_from(["id", "project", "new_value", "field", "top"]))
def test_huge_numbers_anywhere_in_a_webhook_are_answered_below_500(client, world, number, where):
    literal = number_literal(number)
    item, project, value = f'"{uuid.uuid4()}"', f'"{PROJECT}"', f'"{TO_ANALYSE}"'
    field = '"state"'
    if where == "id":
        item = literal
    elif where == "project":
        project = literal
    elif where == "new_value":
        value = literal
    elif where == "field":
        field = literal
    top = literal if where == "top" else '"issue"'
    body = (
        f'{{"event": {top}, "action": "updated", "data": {{"id": {item}, "project": {project}}},'
        f' "activity": {{"field": {field}, "new_value": {value}, "actor": {{"id": "x"}}}}}}'
    )
    deliver(client, body.encode())


@bounded
@given(depth=st.integers(min_value=1, max_value=200_000), kind=st.sampled_from("[{"))
def test_nesting_of_any_depth_is_answered_below_500(client, world, depth, kind):
    opening, closing = ("[", "]") if kind == "[" else ('{"a":', "}")
    deliver(client, (opening * depth + "1" + closing * depth).encode())


@bounded
@given(raw=st.binary(max_size=512) | json_values.map(lambda v: json.dumps(v).encode()))
def test_every_refusal_is_a_4xx_with_a_json_message(client, world, raw):
    answer = client.post(
        "/webhooks/plane/",
        data=raw,
        content_type="application/json",
        HTTP_X_PLANE_SIGNATURE=signature(raw, SECRET),
    )
    assert answer.status_code < 500
    if answer.status_code >= 400:
        assert 400 <= answer.status_code < 500
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]


# --- text that is not UTF-8: lone surrogates and stray bytes, raw inside the JSON -----------

invalid_utf8 = st.sampled_from(
    [
        b"\xff",  # never in UTF-8
        b"\x80",  # a continuation byte with nothing to continue
        b"\xe2\x82",  # a sequence cut short
        b"\xc0\x80",  # an overlong NUL
        b"\xed\xa0\x80",  # a lone surrogate, as CESU-8 writes it
        b"\xf4\x90\x80\x80",  # past U+10FFFF
        b"\x00",  # a raw NUL, which JSON allows only escaped
    ]
)


# Seven sequences and a few places: fewer examples cover them.
@hypothesis_settings(bounded, max_examples=100)
@given(payload=v1 | v2, raw=invalid_utf8, data=st.data())
def test_raw_invalid_utf8_in_a_webhook_is_a_400_that_stores_nothing(
    client, world, payload, raw, data
):
    # Unescaped, so the payload's own lone surrogates go out as raw bytes too.
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass")
    quotes = [at for at, byte in enumerate(body) if byte == ord('"')]
    at = data.draw(st.sampled_from(quotes), label="after quote") + 1
    body = body[:at] + raw + body[at:]
    answer = client.post(
        "/webhooks/plane/",
        data=body,
        content_type="application/json",
        HTTP_X_PLANE_SIGNATURE=signature(body, SECRET),
    )
    assert answer.status_code == 400, answer.content
    assert answer.json()["detail"].startswith("the body is not valid JSON")
    assert not WebhookDelivery.objects.exists()
