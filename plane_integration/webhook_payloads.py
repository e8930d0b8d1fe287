"""Plane webhook bodies: signature, shape, and what a delivery says. Pure.

Two formats arrive (PLANE.md): the community edition's (`event`, `action`, `data`,
`activity`) and the cloud's "v2" (`version`, `event_id`, `event` like
`workitem.updated`, `data`, `previous_attributes`).
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.utils.dateparse import parse_datetime

from pipeline.text import clean_text, storable

# Older servers sent present-tense actions.
ACTIONS = {"create": "created", "update": "updated", "delete": "deleted"}
WORK_ITEM_EVENTS = {"issue", "workitem", "work_item"}
# The envelope's columns in WebhookDelivery: a value that does not fit is refused (400),
# never cut, since the dedupe key and the event decide what a delivery is.
EVENT_MAX_CHARS = 50
DEDUPE_KEY_MAX_CHARS = 200
V2_PREFIX = "v2:"
EVENT_ID_MAX_CHARS = DEDUPE_KEY_MAX_CHARS - len(V2_PREFIX)


class ShapeError(ValueError):
    """The body is authentic but not a Plane webhook we can read."""


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(body: bytes, secret: str, sent: str | None) -> bool:
    """Constant-time check of X-Plane-Signature against the raw body."""
    if not secret or not sent:
        return False
    # As bytes: compare_digest refuses non-ASCII text, and anyone can send such a header.
    given = sent.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(signature(body, secret).encode(), given)


@dataclass(frozen=True)
class Delivery:
    """What one delivery tells us, whatever its format."""

    format: str  # "v1" (community) or "v2"
    dedupe_key: str
    event: str  # "issue", "issue_comment", ... (v2: the entity, "workitem")
    action: str  # created / updated / deleted
    work_item_id: str | None
    project_id: str | None
    name: str
    field: str | None  # the changed field, for updates ("state", "state_id", ...)
    new_state_id: str | None  # set when the delivery reports a state (change or creation)
    state_in_data: dict | None  # data.state as Plane sent it: {id, name, group}, maybe newer
    actor_id: str | None
    actor_name: str
    sequence_id: int | None = None  # the work item's number in its project (DEMO-42's 42)
    updated_at: datetime | None = None  # data.updated_at: when the item was in this state

    @property
    def is_work_item(self) -> bool:
        return self.event in WORK_ITEM_EVENTS

    @property
    def is_state_change(self) -> bool:
        return self.action == "updated" and self.field in ("state", "state_id")


def parse(body: bytes) -> Delivery:
    try:
        payload = json.loads(body.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one
        raise ShapeError(f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        # The C decoder recurses once per nesting level.
        raise ShapeError("the body is not valid JSON: it is nested too deeply") from None
    if not isinstance(payload, dict):
        raise ShapeError("the body is JSON but not an object")
    if "version" in payload or "event_id" in payload:
        return _parse_v2(payload)
    return _parse_v1(payload, body)


def _text(value: Any) -> str | None:
    """A value from `data` or `activity` as storable text: these are Plane's content, so
    whatever a column cannot hold is replaced rather than refused."""
    return clean_text(str(value)) if value not in (None, "") else None


def _envelope(value: Any, field: str, limit: int = EVENT_MAX_CHARS) -> str:
    """An envelope field as stored: text that fits its column, or the body is refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ShapeError(f"not a Plane webhook: {field} must be text")
    text = str(value)
    if not storable(text):
        raise ShapeError(f"not a Plane webhook: {field} contains a NUL or an unpaired surrogate")
    if len(text) > limit:
        raise ShapeError(f"not a Plane webhook: {field} is longer than {limit} characters")
    return text


def _require(payload: dict, *keys: str) -> None:
    missing = [key for key in keys if key not in payload]
    if missing:
        raise ShapeError(f"not a Plane webhook: missing {', '.join(missing)}")


def _parse_v1(payload: dict, body: bytes) -> Delivery:
    _require(payload, "event", "action", "data")
    data = payload["data"]
    for field in ("event", "action"):
        if not isinstance(payload[field], str):
            raise ShapeError(f"not a Plane webhook: {field} must be text")
    event = _envelope(payload["event"], "event")
    action = _envelope(payload["action"], "action")
    if not isinstance(data, dict):
        raise ShapeError("not a Plane webhook: data must be an object")
    action = ACTIONS.get(action, action)
    activity = payload.get("activity") or {}
    if not isinstance(activity, dict):
        raise ShapeError("not a Plane webhook: activity must be an object")
    actor = activity.get("actor") or {}
    actor = actor if isinstance(actor, dict) else {"id": actor}
    field = _text(activity.get("field"))
    state = data.get("state") if isinstance(data.get("state"), dict) else None
    state = {key: _text(state.get(key)) for key in ("id", "name", "group")} if state else None
    if field in ("state", "state_id"):
        new_state = _text(activity.get("new_value"))
    elif action == "created":
        new_state = _text(state.get("id") if state else data.get("state"))
    else:
        new_state = None
    work_item = data.get("issue") if event == "issue_comment" else data.get("id")
    return Delivery(
        format="v1",
        dedupe_key=hashlib.sha256(body).hexdigest(),
        event=event,
        action=action,
        work_item_id=_text(work_item),
        project_id=_text(data.get("project")),
        name=_text(data.get("name")) or "",
        field=field,
        new_state_id=new_state,
        state_in_data=state,
        actor_id=_text(actor.get("id")),
        actor_name=_text(actor.get("display_name") or actor.get("id")) or "",
        sequence_id=_sequence(data.get("sequence_id")),
        updated_at=_when(data.get("updated_at")),
    )


def _parse_v2(payload: dict) -> Delivery:
    _require(payload, "event_id", "event", "data")
    data, name = payload["data"], payload["event"]
    if not isinstance(data, dict) or not isinstance(name, str) or payload["event_id"] in ("", None):
        raise ShapeError("not a Plane v2 webhook: event must be text, data an object")
    event_id = _envelope(payload["event_id"], "event_id", EVENT_ID_MAX_CHARS)
    entity, _, action = name.partition(".")
    entity = _envelope(entity, "event")
    action = _envelope(action, "event")
    if payload.get("entity_type"):
        entity = _envelope(payload["entity_type"], "entity_type")
    previous = payload.get("previous_attributes") or {}
    previous = previous if isinstance(previous, dict) else {}
    state_changed = action == "updated" and ("state_id" in previous or "state" in previous)
    reports_state = state_changed or action == "created"
    actor = payload.get("actor") or data.get("updated_by") or data.get("created_by")
    actor_id = _text(actor.get("id") if isinstance(actor, dict) else actor)
    return Delivery(
        format="v2",
        dedupe_key=f"{V2_PREFIX}{event_id}",
        event=entity.replace("-", "_"),
        action=ACTIONS.get(action, action),
        work_item_id=_text(data.get("id")),
        project_id=_text(data.get("project_id") or data.get("project")),
        name=_text(data.get("name")) or "",
        field="state_id" if state_changed else None,
        new_state_id=_text(data.get("state_id")) if reports_state else None,
        state_in_data=None,
        actor_id=actor_id,
        actor_name=actor_id or "",
        sequence_id=_sequence(data.get("sequence_id")),
        updated_at=_when(data.get("updated_at")),
    )


def _when(value: Any) -> datetime | None:
    """Plane's `updated_at` (ISO 8601, UTC when naive), or None when absent or unreadable."""
    try:
        when = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when


def _sequence(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        return None
    return value
