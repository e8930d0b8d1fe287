import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipeline.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as exc:
    # A malformed setting is the operator's to fix: its one line, not a traceback.
    sys.exit(f"Stageboard cannot start: {exc}")
