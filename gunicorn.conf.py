"""gunicorn's defaults for Stageboard, sized for a small machine (2 cores, little memory).

gunicorn reads this file from the directory it starts in (`gunicorn pipeline.wsgi`); the
environment variables named below change a value without editing it, and any flag on the
command line or `GUNICORN_CMD_ARGS` overrides both.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
# One worker process of 8 threads: a second worker costs its own pages copied from the
# preloaded app (10 to 15 MB), and on two cores the q cluster takes the other one under load.
# WEB_WORKERS=2 WEB_THREADS=4 on a bigger machine.
workers = int(os.environ.get("WEB_WORKERS", "1"))
threads = int(os.environ.get("WEB_THREADS", "8"))
# The app is loaded once in the master and the workers fork from it: its code and data are
# shared pages, not one copy per worker.
preload_app = True
# Recycle a worker after this many requests (with jitter, so not all at once): whatever a
# long-lived worker accumulates (fragmentation, caches) is returned. 40,000 for the one worker
# recycles as often as 20,000 each did for two; a recycle closes the worker's keep-alive
# connections, so it should not come every minute of a busy burst.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "40000"))
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

    get_resolver(settings.ROOT_URLCONF).url_patterns  # noqa: B018  (loads the URLconf)
    gc.freeze()
