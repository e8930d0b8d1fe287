"""gunicorn's settings for Stageboard: `.venv/bin/gunicorn -c gunicorn.conf.py pipeline.wsgi`.

Each value can be overridden from the environment (GUNICORN_*) without editing the file.
Requests are short (the webhook answers in milliseconds, Plane is only called from the q
cluster), so a few synchronous workers per core are enough.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", 2 * multiprocessing.cpu_count() + 1))
# Longer than any request should take; Plane's webhook gives up after 30 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
graceful_timeout = 30
# Recycle workers now and then: bounded memory, whatever a library leaks.
max_requests = 2000
max_requests_jitter = 200
# The proxy in front terminates TLS and sets X-Forwarded-Proto (DJANGO_SECURE_PROXY_SSL_HEADER).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
