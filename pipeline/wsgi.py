import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.urls import set_urlconf

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipeline.settings")

WEBHOOKS = "/webhooks/"
WEBHOOK_URLCONF = "pipeline.webhook_urls"
# The most matches the webhook handler keeps: one a fixed path of its URLconf.
KEPT_MATCHES = 32


class WebhookHandler(WSGIHandler):
    """Serves /webhooks/ with none of the site's middleware but the JSON errors.

    A webhook is a signed POST from a program: sessions, CSRF, authentication, messages,
    static files, security headers and slash redirects do nothing for it, and together they
    cost more than the signature check and the INSERT (measured in
    tests/benchmarks/webhook_ingest.py). Requests resolve in pipeline.webhook_urls.
    """

    def __init__(self):
        super().__init__()
        self.matches = {}  # path -> its ResolverMatch, for the fixed paths

    def load_middleware(self, is_async=False):
        from pipeline.middleware import JsonErrorsMiddleware

        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = convert_exception_to_response(self._get_response)
        self._middleware_chain = convert_exception_to_response(JsonErrorsMiddleware(get_response))

    def get_response(self, request):
        request.urlconf = WEBHOOK_URLCONF
        # No `SELECT 1` before the webhook's INSERT (CONN_HEALTH_CHECKS): a round trip per
        # request. The INSERT is the check, and is sent again on a new connection when the
        # kept one died (pipeline.inbox.insert).
        connection.health_check_done = True
        return super().get_response(request)

    def resolve_request(self, request):
        """The webhook URLconf's paths are fixed (no converters): a path resolves to the
        same view every time, so its match is kept rather than searched for on every
        delivery. An unknown path is resolved (and refused, 404) each time."""
        match = self.matches.get(request.path_info)
        if match is None:
            match = super().resolve_request(request)
            if not match.args and not match.kwargs and len(self.matches) < KEPT_MATCHES:
                self.matches[request.path_info] = match
            return match
        set_urlconf(WEBHOOK_URLCONF)  # as a resolved request leaves it
        request.resolver_match = match
        return match


class Dispatcher:
    """The WSGI application: /webhooks/ to the webhook handler, the rest to Django's own."""

    def __init__(self):
        self.site = get_wsgi_application()
        self.webhooks = WebhookHandler()

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith(WEBHOOKS):
            return self.webhooks(environ, start_response)
        return self.site(environ, start_response)


try:
    application = Dispatcher()
except ImproperlyConfigured as exc:
    # A malformed setting is the operator's to fix: its one line, not a traceback.
    sys.exit(f"Stageboard cannot start: {exc}")
