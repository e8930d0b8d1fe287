#!/usr/bin/env python3
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipeline.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018  (reads the settings: a bad value fails here)
    except ImproperlyConfigured as exc:
        # A malformed setting is the operator's to fix: its one line, not a traceback.
        sys.exit(f"Stageboard cannot start: {exc}")
    execute_from_command_line(sys.argv)
