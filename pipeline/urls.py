from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from pipeline.dora_admin import dora_view
from pipeline.health import healthz

# The API and the admin are imported on the first request under their prefix (or the first
# reverse()): a string names the module, as `include()` would import it now. A web process
# that has only taken webhooks then holds neither DRF's views nor drf-spectacular (about
# 5 MB, measured).
API = ("pipeline.api_urls", None, None)
GIT_API = ("git_hosts.api_urls", None, None)
ADMIN = ("pipeline.admin_urls", "admin", admin.site.name)

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("metrics", include("operations.urls")),
    path("api/", GIT_API),
    path("api/", API),
    path("admin/dora/", admin.site.admin_view(dora_view), name="admin-dora"),
    path("admin/", ADMIN),
    # The front door is the operations dashboard (the admin's index).
    path("", RedirectView.as_view(pattern_name="admin:index"), name="home"),
    path("", include("plane_integration.urls")),
    path("", include("git_hosts.urls")),
]

handler404 = "pipeline.api_errors.page_not_found"
