import sys

from django.contrib.admin.apps import SimpleAdminConfig


def running_qcluster() -> bool:
    return sys.argv[1:2] == ["qcluster"]


class AdminConfig(SimpleAdminConfig):
    """The admin, its modules discovered in every process but the q cluster's.

    The cluster never serves the admin; its modules (and what they import: forms, the Plane
    client and `requests`) would cost about 4 MB in each of its processes.
    """

    def ready(self):
        super().ready()
        if not running_qcluster():
            self.module.autodiscover()
