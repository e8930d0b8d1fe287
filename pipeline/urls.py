from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from pipeline.dora_admin import dora_view
from pipeline.health import healthz
from pipeline.views import DeploymentViewSet, DoraView, TaskViewSet

router = DefaultRouter()
router.register("tasks", TaskViewSet, basename="task")
router.register("deployments", DeploymentViewSet, basename="deployment")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", include("operations.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI over the schema, for signed-in users (SERVE_PERMISSIONS), assets served here.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/metrics/dora/", DoraView.as_view(), name="dora"),
    path("api/", include(router.urls)),
    path("admin/dora/", admin.site.admin_view(dora_view), name="admin-dora"),
    path("admin/", admin.site.urls),
    # The front door is the operations dashboard (the admin's index).
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("plane_integration.urls")),
]

handler404 = "pipeline.api_errors.page_not_found"
