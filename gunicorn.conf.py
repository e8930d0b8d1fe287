"""gunicorn's defaults for Stageboard, sized for a small machine (2 cores, little memory).

gunicorn reads this file from the directory it starts in (`gunicorn pipeline.wsgi`); the
environment variables named below change a value without editing it, and any flag on the
command line or `GUNICORN_CMD_ARGS` overrides both.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# Two worker processes of 4 threads: one process is bound by its GIL at about half of what
# two cores can take in webhooks (tests/benchmarks/webhook_ingest.py), and a second costs
# only the pages it writes to (the app is preloaded and frozen, see pre_fork): about 10 MB.
workers = int(os.environ.get("WEB_WORKERS", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
# The app is loaded once in the master and the workers fork from it: its code and data are
# shared pages, not one copy per worker.
preload_app = True
# Workers are not recycled by default: a recycle closes the worker's keep-alive connections
# and pays a new worker's warm-up in the middle of a burst, and a worker's memory stays flat
# under load (measured at the end of the benchmark's rounds). WEB_MAX_REQUESTS=N recycles
# a worker after N requests (with jitter, so not all at once) if a deployment leaks.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
# Longer than any request should take; Plane's webhook gives up after 30 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# The proxy in front terminates TLS and sets X-Forwarded-Proto (DJANGO_SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
# No access log by default (a line per webhook costs throughput); "-" writes it to stdout.
accesslog = os.environ.get("GUNICORN_ACCESSLOG") or None
errorlog = "-"


def pre_fork(server, worker):
    # Import what every request needs before the fork, so it is shared too, and take it out
    # of the cyclic GC: a collection touching each object's header would copy its page
    # into every worker.
    from django.conf import settings
    from django.urls import get_resolver

    from pipeline.wsgi import WEBHOOK_URLCONF

    for urlconf in (settings.ROOT_URLCONF, WEBHOOK_URLCONF):
        get_resolver(urlconf).url_patterns  # noqa: B018  (loads the URLconf)
    gc.freeze()
