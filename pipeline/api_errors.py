"""Every API error is JSON with a `detail` message.

DRF already answers `{"detail": ...}` for most errors; validation errors come as field
errors only, so they get a summary `detail` on top. Django's own 404 for an unknown
URL under /api/ or /webhooks/ is answered as JSON too, instead of an HTML page
(`pipeline.middleware` does the same for every other error, and with DEBUG on).
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults

from pipeline.middleware import detail, for_machines

logger = logging.getLogger(__name__)


# The database unreachable (or a lock timeout): the caller should come back, not read a
# bug. Plane retries a delivery that got an error status; nothing was stored, since
# storing is one transaction.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30


def database_unavailable(request, exc: Exception) -> JsonResponse:
    """503 with Retry-After: the answer to a request the database could not serve."""
    logger.error("database unavailable during %s", request, exc_info=exc)
    response = JsonResponse({"detail": "The database is unavailable; try again later."}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return database_unavailable(context.get("request"), exc)
    # Imported here: the webhook views use this module, and a web worker that only took
    # webhooks need not hold DRF (about 14 MB).
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data)}
    elif isinstance(response.data, dict) and "detail" not in response.data:
        general = response.data.get("non_field_errors")
        if general:
            detail = " ".join(str(message) for message in general)
        else:
            detail = f"Invalid input in: {', '.join(response.data)}."
        response.data = {"detail": detail, **response.data}
    return response


def page_not_found(request, exception):
    if for_machines(request):
        return JsonResponse({"detail": detail(request, 404)}, status=404)
    return defaults.page_not_found(request, exception)
