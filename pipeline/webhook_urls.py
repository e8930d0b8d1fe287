"""The URLconf of the webhook handler (pipeline.wsgi): the senders' endpoints and nothing else.

A request under /webhooks/ is resolved here, not in pipeline.urls, so it is matched against
a handful of patterns instead of the whole site's, and a worker that only took webhooks never
imports the admin or the API. The endpoints are the same modules pipeline.urls includes,
named as strings: pipeline, the lowest floor, imports no app above it.
"""

from django.urls import include, path

urlpatterns = [
    path("", include("plane_integration.urls")),
    path("", include("git_hosts.urls")),
]

handler404 = "pipeline.api_errors.page_not_found"
