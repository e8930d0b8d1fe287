"""Background housekeeping run by the q cluster."""

import logging
from datetime import timedelta

from django.utils import timezone
from django_q.models import Failure

logger = logging.getLogger(__name__)

# django-q2 prunes successful results itself (`save_limit`) but keeps failures forever.
KEEP_FAILURES = timedelta(days=30)


def prune_failed_task_results() -> int:
    """Delete failed task results older than KEEP_FAILURES; return how many."""
    deleted, _ = Failure.objects.filter(stopped__lt=timezone.now() - KEEP_FAILURES).delete()
    if deleted:
        logger.info("pruned %d failed task results older than %s", deleted, KEEP_FAILURES)
    return deleted
