"""The API's URLs, under /api/. Imported on the first request under /api/ (or the first
reverse()), not with the root URLconf: DRF's views and drf-spectacular are not loaded by a
web process that has only taken webhooks."""

from django.contrib.auth.views import redirect_to_login
from django.urls import include, path, reverse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from pipeline.views import DeploymentViewSet, DoraView, TaskViewSet

router = DefaultRouter()
router.register("tasks", TaskViewSet, basename="task")
router.register("deployments", DeploymentViewSet, basename="deployment")

swagger_ui = SpectacularSwaggerView.as_view(url_name="api-schema")


def api_docs(request, *args, **kwargs):
    """Swagger UI; a browser without a session goes to the login page and comes back, where
    DRF would answer it with a bare 401 (a script without a token still gets that)."""
    browser = "text/html" in request.headers.get("Accept", "")
    if browser and not request.user.is_authenticated and "Authorization" not in request.headers:
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    return swagger_ui(request, *args, **kwargs)


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI over the schema, for signed-in users (SERVE_PERMISSIONS), assets served here.
    path("docs/", api_docs, name="api-docs"),
    path("metrics/dora/", DoraView.as_view(), name="dora"),
    path("", include(router.urls)),
]
