"""POST /webhooks/plane/: Plane's signed webhooks, checked at the edge, stored once."""

import logging

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from plane_integration.ingest import store
from plane_integration.webhook_payloads import ShapeError, parse, signature_ok

logger = logging.getLogger(__name__)


def refuse(code: int, detail: str) -> Response:
    return Response({"detail": detail}, status=code)


@extend_schema(exclude=True)  # Plane's endpoint, not part of the pipeline API
class PlaneWebhookView(APIView):
    """Strict at the edge, in this order: size (413), signature over the raw body (403),
    shape (400). Then store once and answer at once; a q task does the work."""

    authentication_classes = []  # the signature is the authentication
    permission_classes = []
    parser_classes = []  # nothing may parse the body before its signature is checked

    def post(self, request):
        limit = settings.PLANE_WEBHOOK_MAX_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return refuse(status.HTTP_400_BAD_REQUEST, "Content-Length is not a number.")
        if declared > limit:
            return refuse(
                status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                f"The body is {declared} bytes; webhooks may be at most {limit}.",
            )
        body = request.body
        secret = settings.PLANE_WEBHOOK_SECRET
        if not secret:
            logger.error("plane webhook refused: PLANE_WEBHOOK_SECRET is not set")
            return refuse(status.HTTP_403_FORBIDDEN, "Webhooks are not accepted here yet.")
        if not signature_ok(body, secret, request.headers.get("X-Plane-Signature")):
            logger.warning(
                "plane webhook refused: %s signature (delivery %s)",
                "missing" if "X-Plane-Signature" not in request.headers else "wrong",
                request.headers.get("X-Plane-Delivery", "-"),
            )
            return refuse(status.HTTP_403_FORBIDDEN, "The X-Plane-Signature does not match.")
        try:
            delivery = parse(body)
        except ShapeError as exc:
            return refuse(status.HTTP_400_BAD_REQUEST, f"{exc}.")
        row, stored = store(delivery, body, request.headers.get("X-Plane-Delivery", ""))
        answer = {"delivery": row.pk, "state": row.state}
        if not stored:
            return Response({"status": "duplicate", **answer}, status=status.HTTP_200_OK)
        return Response({"status": "accepted", **answer}, status=status.HTTP_202_ACCEPTED)
