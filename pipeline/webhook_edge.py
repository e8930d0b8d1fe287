"""What every webhook endpoint checks first, before it reads or trusts a body (Plane's and
the Git hosts'): answers are JSON `{"detail": ...}` with the status a sender understands."""

from http import HTTPStatus as status

from django.conf import settings
from django.http import JsonResponse


def refuse(code: int, detail: str) -> JsonResponse:
    return JsonResponse({"detail": detail}, status=code)


def oversized(request) -> JsonResponse | None:
    """A refusal when the declared body is past PLANE_WEBHOOK_MAX_BYTES (checked before the
    body is read), or None."""
    limit = settings.PLANE_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return refuse(status.BAD_REQUEST, "Content-Length is not a number.")
    if declared > limit:
        return refuse(
            status.REQUEST_ENTITY_TOO_LARGE,
            f"The body is {declared} bytes; webhooks may be at most {limit}.",
        )
    return None
