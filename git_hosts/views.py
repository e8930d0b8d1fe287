"""POST /webhooks/github/, /webhooks/gitlab/, /webhooks/forgejo/: signed, stored once.

Strict at the edge, in this order, as for Plane's webhook: size (413), the host's secret
set and the signature over the raw body (403), the headers and the body's shape (400).
Then one INSERT and an answer at once; the drain does the work (git_hosts.drain).
"""

import json
import logging
from dataclasses import dataclass
from http import HTTPStatus as status

from django.conf import settings

from git_hosts import signatures
from git_hosts.ingest import store
from git_hosts.models import GitEvent, Provider
from pipeline.api_errors import DATABASE_UNAVAILABLE, database_unavailable
from pipeline.text import storable
from pipeline.webhook_edge import WebhookView, answer, oversized, refuse

logger = logging.getLogger(__name__)

# What a header may hold to be stored: the event and delivery id decide what a delivery
# is, so one that does not fit its column is refused, never cut.
EVENT_MAX = GitEvent._meta.get_field("event").max_length
DELIVERY_MAX = GitEvent._meta.get_field("delivery_id").max_length


@dataclass(frozen=True)
class Edge:
    """What one host's request says at the edge: its event, delivery id and signature."""

    provider: str
    secret_setting: str

    def authentic(self, request, body: bytes, secret: str) -> bool:
        headers = request.headers
        if self.provider == Provider.GITHUB:
            return signatures.github_ok(body, secret, headers.get("X-Hub-Signature-256"))
        if self.provider == Provider.GITLAB:
            return signatures.gitlab_ok(secret, headers.get("X-Gitlab-Token"))
        sent = headers.get("X-Forgejo-Signature") or headers.get("X-Gitea-Signature")
        return signatures.forgejo_ok(body, secret, sent)

    def signature_header(self, request) -> str | None:
        names = {
            Provider.GITHUB: ("X-Hub-Signature-256",),
            Provider.GITLAB: ("X-Gitlab-Token",),
            Provider.FORGEJO: ("X-Forgejo-Signature", "X-Gitea-Signature"),
        }[self.provider]
        return next((n for n in names if n in request.headers), None)

    def event(self, request) -> str:
        headers = request.headers
        if self.provider == Provider.GITHUB:
            return headers.get("X-GitHub-Event", "")
        if self.provider == Provider.GITLAB:
            return headers.get("X-Gitlab-Event", "")
        return headers.get("X-Forgejo-Event") or headers.get("X-Gitea-Event", "")

    def delivery_id(self, request) -> str:
        headers = request.headers
        if self.provider == Provider.GITHUB:
            return headers.get("X-GitHub-Delivery", "")
        if self.provider == Provider.GITLAB:
            # The same across retries of one delivery, where GitLab sends it.
            return headers.get("Idempotency-Key") or headers.get("X-Gitlab-Event-UUID", "")
        return headers.get("X-Forgejo-Delivery") or headers.get("X-Gitea-Delivery", "")


class GitWebhookView(WebhookView):
    """One host's webhook. A plain Django view, like Plane's: no parser, authentication
    or content negotiation of DRF's applies; the signature authenticates."""

    edge: Edge

    def post(self, request):
        edge = self.edge
        too_large = oversized(request)
        if too_large is not None:
            return too_large
        body = request.body
        secret = getattr(settings, edge.secret_setting)
        if not secret:
            logger.error("%s webhook refused: %s is not set", edge.provider, edge.secret_setting)
            return refuse(
                status.FORBIDDEN,
                f"{edge.provider} webhooks are not accepted here: {edge.secret_setting} is unset.",
            )
        header = edge.signature_header(request)
        if not edge.authentic(request, body, secret):
            logger.warning(
                "%s webhook refused: %s", edge.provider, f"wrong {header}" if header else "unsigned"
            )
            if header is None:
                return refuse(status.FORBIDDEN, f"The {edge.provider} webhook is not signed.")
            return refuse(status.FORBIDDEN, f"The {header} does not match.")
        event, delivery_id = edge.event(request), edge.delivery_id(request)
        if not event or len(event) > EVENT_MAX or not storable(event):
            return refuse(status.BAD_REQUEST, "The event header is missing, too long or not text.")
        if not storable(delivery_id):
            return refuse(status.BAD_REQUEST, "The delivery id is not text.")
        if len(delivery_id) > DELIVERY_MAX:
            return refuse(
                status.BAD_REQUEST, f"The delivery id is longer than {DELIVERY_MAX} characters."
            )
        if request.content_type == "application/x-www-form-urlencoded":
            return refuse(
                status.BAD_REQUEST,
                "The body is form-encoded: set the webhook's content type to application/json.",
            )
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            return refuse(status.BAD_REQUEST, "The body is not valid JSON.")
        if not isinstance(payload, dict):
            return refuse(status.BAD_REQUEST, "The body is not a JSON object.")
        try:
            pk, outcome, stored = store(edge.provider, event, delivery_id, payload, body)
        except DATABASE_UNAVAILABLE as exc:  # nothing was stored: the host delivers it again
            return database_unavailable(request, exc)
        if not stored:
            return answer(status.OK, {"status": "duplicate", "event": pk, "outcome": outcome})
        return answer(status.ACCEPTED, {"status": "accepted", "event": pk, "outcome": outcome})


class GitHubWebhookView(GitWebhookView):
    edge = Edge(Provider.GITHUB, "GITHUB_WEBHOOK_SECRET")


class GitLabWebhookView(GitWebhookView):
    edge = Edge(Provider.GITLAB, "GITLAB_WEBHOOK_SECRET")


class ForgejoWebhookView(GitWebhookView):
    edge = Edge(Provider.FORGEJO, "FORGEJO_WEBHOOK_SECRET")
