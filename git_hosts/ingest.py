"""Git host deliveries: stored once when they arrive (one INSERT), worked off in the
background (git_hosts.drain), as Plane's webhooks are (pipeline.inbox)."""

import hashlib

from django.db import IntegrityError, connection, transaction

from git_hosts.models import GitEvent, Provider
from pipeline import inbox
from pipeline.text import clean_text

Outcome = GitEvent.Outcome
DRAIN = "git_hosts.drain.drain_git_events"
DRAIN_QUEUED = "stageboard:git-drain-queued"

# The events that can move a task, by host; any other is stored as ignored at once.
USED = {
    Provider.GITHUB: {"pull_request", "pull_request_review", "deployment_status", "workflow_run"},
    Provider.GITLAB: {"Merge Request Hook", "Deployment Hook"},
    Provider.FORGEJO: {
        "pull_request",
        "pull_request_review_rejected",
        "pull_request_review_approved",
    },
}
ACTION_MAX = GitEvent._meta.get_field("action").max_length
PATH_MAX = GitEvent._meta.get_field("repo_path").max_length


def request_drain(*, trust: bool = True) -> None:
    """Queue a drain unless one is queued and has not started yet (`inbox.request_run`;
    a drain queuing its successor does not trust)."""
    inbox.request_run(DRAIN, DRAIN_QUEUED, name="git events drain", trust=trust)


def envelope(provider: str, payload: dict) -> tuple[str, str]:
    """The action and the repository path a body names, as text a column holds ("" where
    it names none): only shown and filtered on, so cut, never refused."""
    if provider == Provider.GITLAB:
        attributes = payload.get("object_attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        action = attributes.get("action") or attributes.get("status") or payload.get("status")
        project = payload.get("project") if isinstance(payload.get("project"), dict) else {}
        path = project.get("path_with_namespace")
    else:
        action = payload.get("action")
        repository = payload.get("repository")
        path = repository.get("full_name") if isinstance(repository, dict) else None
    action = clean_text(action)[:ACTION_MAX] if isinstance(action, str) else ""
    path = clean_text(path)[:PATH_MAX] if isinstance(path, str) else ""
    return action, path


def store(
    provider: str, event: str, delivery_id: str, payload: dict, body: bytes
) -> tuple[int, str, bool]:
    """Store a verified delivery once; (its id, its outcome, stored now). A host's
    redelivery keeps its delivery id, so that is the key; without one, the body's hash is."""
    key = delivery_id or f"sha256:{hashlib.sha256(body).hexdigest()}"
    action, path = envelope(provider, payload)
    used = event in USED[provider]
    if event == "ping":
        why = "GitHub's ping: the webhook reaches Stageboard"
    else:
        why = "" if used else f"{event} events move no task"
    fields = {
        "provider": provider,
        "event": event,
        "action": action,
        "delivery_id": delivery_id,
        "dedupe_key": f"{provider}:{key}",
        "repo_path": path,
        "body": body,
        "outcome": Outcome.PENDING if used else Outcome.IGNORED,
        "detail": why,
    }
    try:
        if connection.in_atomic_block:  # a savepoint, so a repeat leaves the caller's intact
            with transaction.atomic():
                pk = inbox.insert(GitEvent, fields)
        else:
            pk = inbox.insert(GitEvent, fields)
    except IntegrityError:
        pk, outcome = GitEvent.objects.values_list("pk", "outcome").get(
            dedupe_key=fields["dedupe_key"]
        )
        return pk, outcome, False
    if used:
        # Robust: the event is stored whatever happens here; the schedule drains it anyway.
        transaction.on_commit(request_drain, robust=True)
    return pk, fields["outcome"], True
