"""Links from Stageboard's pages to work items in Plane's web app."""

from django.conf import settings


def work_item_url(workspace: str | None, project_id, work_item_id) -> str | None:
    """`{PLANE_WEB_URL}/{workspace}/projects/{project}/issues/{work_item}`, the address
    Plane's web app opens a work item at; None without PLANE_WEB_URL or a workspace."""
    base = settings.PLANE_WEB_URL.rstrip("/")
    if not (base and workspace):
        return None
    return f"{base}/{workspace}/projects/{project_id}/issues/{work_item_id}"
