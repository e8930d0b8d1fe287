"""The API's URLs, under /api/. Imported on the first request under /api/ (or the first
reverse()), not with the root URLconf: DRF's views and drf-spectacular are not loaded by a
web process that has only taken webhooks."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from pipeline.views import DeploymentViewSet, DoraView, TaskViewSet

router = DefaultRouter()
router.register("tasks", TaskViewSet, basename="task")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI over the schema, for signed-in users (SERVE_PERMISSIONS), assets served here.
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("metrics/dora/", DoraView.as_view(), name="dora"),
    path("", include(router.urls)),
]
