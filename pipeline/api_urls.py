"""The API's URLs, under /api/. Imported on the first request under /api/ (or the first
reverse()), not with the root URLconf: DRF's views and drf-spectacular are not loaded by a
web process that has only taken webhooks."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from pipeline.views import DeploymentViewSet, DoraView, TaskViewSet

router = DefaultRouter()
router.register("tasks", TaskViewSet, basename="task")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("metrics/dora/", DoraView.as_view(), name="dora"),
    path("", include(router.urls)),
]
