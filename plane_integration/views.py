"""POST /webhooks/plane/: Plane's signed webhooks, checked at the edge, stored once."""

import logging
from http import HTTPStatus as status

from django.conf import settings

from pipeline.api_errors import DATABASE_UNAVAILABLE, database_unavailable
from pipeline.webhook_edge import WebhookView, answer, oversized, refuse
from plane_integration.ingest import store
from plane_integration.webhook_payloads import ShapeError, parse, signature_ok

logger = logging.getLogger(__name__)


class PlaneWebhookView(WebhookView):
    """Strict at the edge, in this order: size (413), signature over the raw body (403),
    shape (400). Then store once and answer at once; a drain does the work.

    A plain Django view, not DRF's: no parser, authentication, permission, throttle or
    content negotiation applies here, and their machinery was a third of a delivery's
    cost. Not part of the pipeline API's schema."""

    def post(self, request):
        too_large = oversized(request)
        if too_large is not None:
            return too_large
        body = request.body
        secret = settings.PLANE_WEBHOOK_SECRET
        if not secret:
            logger.error("plane webhook refused: PLANE_WEBHOOK_SECRET is not set")
            return refuse(status.FORBIDDEN, "Webhooks are not accepted here yet.")
        # META, not request.headers: that parses every header of the request into a new
        # mapping, and only these two are read.
        sent = request.META.get("HTTP_X_PLANE_SIGNATURE")
        delivery_id = request.META.get("HTTP_X_PLANE_DELIVERY", "")
        if not signature_ok(body, secret, sent):
            missing = not sent
            logger.warning(
                "plane webhook refused: %s signature (delivery %s)",
                "missing" if missing else "wrong",
                delivery_id or "-",
            )
            if missing:
                return refuse(status.FORBIDDEN, "The X-Plane-Signature header is missing.")
            return refuse(status.FORBIDDEN, "The X-Plane-Signature does not match.")
        try:
            delivery = parse(body)
        except ShapeError as exc:
            return refuse(status.BAD_REQUEST, f"{exc}.")
        try:
            pk, state, stored = store(delivery, body, delivery_id)
        except DATABASE_UNAVAILABLE as exc:  # nothing was stored: Plane delivers it again
            return database_unavailable(request, exc)
        if not stored:
            return answer(status.OK, {"status": "duplicate", "delivery": pk, "state": state})
        return answer(status.ACCEPTED, {"status": "accepted", "delivery": pk, "state": state})
