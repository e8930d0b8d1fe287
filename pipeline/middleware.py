"""The machine-facing paths answer JSON, whatever the debug setting.

Under `/api/` and `/webhooks/` the callers are programs: an HTML error page (Django's
debug pages included) is of no use to them, and a redirect to add a trailing slash loses
a POST's body (with DEBUG on, Django refuses it with a RuntimeError, a 500).
"""

from http import HTTPStatus

from django.http import JsonResponse
from django.middleware.common import CommonMiddleware

MACHINE_PATHS = ("/api/", "/webhooks/")


def for_machines(request) -> bool:
    return request.path.startswith(MACHINE_PATHS) or request.path.rstrip("/") in {
        prefix.rstrip("/") for prefix in MACHINE_PATHS
    }


class SlashMiddleware(CommonMiddleware):
    """Django's CommonMiddleware, minus APPEND_SLASH on the machine paths: there an
    unknown path is a JSON 404 saying where the slash goes."""

    def should_redirect_with_slash(self, request) -> bool:
        return not for_machines(request) and super().should_redirect_with_slash(request)


class JsonErrorsMiddleware:
    """Turn any non-JSON error answer on the machine paths into `{"detail": ...}`.

    Outermost, so it also sees what Django renders for an exception (a 500) or an
    unknown URL (a 404) after the inner middleware ran.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not for_machines(request)
            or response.get("Content-Type", "").startswith("application/json")
        ):
            return response
        status = response.status_code
        return JsonResponse({"detail": detail(request, status)}, status=status)


def detail(request, status: int) -> str:
    if status == 404:
        slash = "" if request.path.endswith("/") else " (paths here end with a slash)"
        return f"No API endpoint at {request.path}{slash}."
    if status >= 500:
        return "Internal server error; the details are in the service's log."
    try:
        return f"{HTTPStatus(status).phrase}."
    except ValueError:
        return f"Error {status}."
