"""POST /webhooks/plane/: Plane's signed webhooks, checked at the edge, stored once."""

import logging
from http import HTTPStatus as status

from django.conf import settings
from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from pipeline.api_errors import DATABASE_UNAVAILABLE, database_unavailable
from pipeline.webhook_edge import oversized, refuse
from plane_integration.ingest import store
from plane_integration.webhook_payloads import ShapeError, parse, signature_ok

logger = logging.getLogger(__name__)


@method_decorator(csrf_exempt, name="dispatch")  # the signature is the authentication
class PlaneWebhookView(View):
    """Strict at the edge, in this order: size (413), signature over the raw body (403),
    shape (400). Then store once and answer at once; a drain does the work.

    A plain Django view, not DRF's: no parser, authentication, permission, throttle or
    content negotiation applies here, and their machinery was a third of a delivery's
    cost. Not part of the pipeline API's schema."""

    http_method_names = ["post"]

    def post(self, request):
        too_large = oversized(request)
        if too_large is not None:
            return too_large
        body = request.body
        secret = settings.PLANE_WEBHOOK_SECRET
        if not secret:
            logger.error("plane webhook refused: PLANE_WEBHOOK_SECRET is not set")
            return refuse(status.FORBIDDEN, "Webhooks are not accepted here yet.")
        if not signature_ok(body, secret, request.headers.get("X-Plane-Signature")):
            missing = not request.headers.get("X-Plane-Signature")
            logger.warning(
                "plane webhook refused: %s signature (delivery %s)",
                "missing" if missing else "wrong",
                request.headers.get("X-Plane-Delivery", "-"),
            )
            if missing:
                return refuse(status.FORBIDDEN, "The X-Plane-Signature header is missing.")
            return refuse(status.FORBIDDEN, "The X-Plane-Signature does not match.")
        try:
            delivery = parse(body)
        except ShapeError as exc:
            return refuse(status.BAD_REQUEST, f"{exc}.")
        try:
            row, stored = store(delivery, body, request.headers.get("X-Plane-Delivery", ""))
        except DATABASE_UNAVAILABLE as exc:  # nothing was stored: Plane delivers it again
            return database_unavailable(request, exc)
        answer = {"delivery": row.pk, "state": row.state}
        if not stored:
            return JsonResponse({"status": "duplicate", **answer}, status=status.OK)
        return JsonResponse({"status": "accepted", **answer}, status=status.ACCEPTED)
