"""What every webhook endpoint checks first, before it reads or trusts a body (Plane's and
the Git hosts'): answers are JSON `{"detail": ...}` with the status a sender understands."""

import json
from http import HTTPStatus as status

from django.conf import settings
from django.http import HttpResponse
from django.utils.decorators import classonlymethod
from django.views import View


class WebhookView(View):
    """A sender's endpoint: POST only, and exempt from CSRF, since the signature is the
    authentication. Marked as `csrf_exempt` marks a view, without its wrapper and
    `method_decorator`'s, which cost a bound copy of the method on every request."""

    http_method_names = ["post"]

    @classonlymethod
    def as_view(cls, **initkwargs):
        view = super().as_view(**initkwargs)
        view.csrf_exempt = True
        return view


def answer(code: int, payload: dict) -> HttpResponse:
    """A JSON answer. The payloads are plain text and numbers: the standard encoder, not
    JsonResponse's DjangoJSONEncoder class, which is slower on every call."""
    return HttpResponse(json.dumps(payload), status=code, content_type="application/json")


def refuse(code: int, detail: str) -> HttpResponse:
    return answer(code, {"detail": detail})


def oversized(request) -> HttpResponse | None:
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
