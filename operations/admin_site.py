"""Stageboard's admin site: Django's, with the operations dashboard as its front page.

Installed in place of `django.contrib.admin` (`INSTALLED_APPS` names
`operations.admin_site.StageboardAdminConfig`), the documented way to replace the default
site, so every app's `admin.register` lands here unchanged.
"""

from django.contrib import admin

from pipeline.admin_config import AdminConfig


class StageboardAdminSite(admin.AdminSite):
    site_header = "Stageboard"
    site_title = "Stageboard"
    index_title = "Is everything all right?"
    index_template = "admin/stageboard_dashboard.html"

    def each_context(self, request):
        from pipeline.version import version

        return {**super().each_context(request), "stageboard_version": version()}

    def index(self, request, extra_context=None):
        from operations.dashboard import gather  # reads every app's models: after loading

        context = {"dashboard": gather(), **(extra_context or {})}
        return super().index(request, extra_context=context)


class StageboardAdminConfig(AdminConfig):
    default_site = "operations.admin_site.StageboardAdminSite"
