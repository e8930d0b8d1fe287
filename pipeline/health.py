"""GET /healthz: can this deployment do its work right now?

200 when the database answers and a q cluster reported in the last
HEALTHZ_CLUSTER_MAX_AGE seconds; 503 otherwise, naming what failed. Anyone may ask, so
the answer names the dependency, never its error text (that goes to the log).
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django_q.conf import Conf
from django_q.status import Stat

from pipeline.version import version

logger = logging.getLogger(__name__)


def check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("healthz: database check failed: %s", exc)
        return {"ok": False, "error": "database did not answer"}
    return {"ok": True, "vendor": connection.vendor}


def check_cluster() -> dict:
    try:
        stats = Stat.get_all()
    except Exception as exc:
        logger.warning("healthz: reading the q cluster status failed: %s", exc)
        return {"ok": False, "error": "could not read the q cluster status"}
    now = timezone.now()
    max_age = settings.HEALTHZ_CLUSTER_MAX_AGE
    running = [
        stat
        for stat in stats
        if stat.status != Conf.STOPPED and (now - stat.timestamp).total_seconds() <= max_age
    ]
    if not running:
        return {"ok": False, "error": f"no q cluster has reported in the last {max_age} s"}
    return {
        "ok": True,
        "clusters": [
            {"host": stat.host, "status": str(stat.status), "workers": len(stat.workers)}
            for stat in running
        ],
    }


@never_cache
@require_GET
def healthz(request):
    checks = {"database": check_database(), "cluster": check_cluster()}
    healthy = all(check["ok"] for check in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "version": version(), "checks": checks},
        status=200 if healthy else 503,
    )
