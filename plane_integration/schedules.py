from django.conf import settings

from pipeline.scheduling import ScheduleSpec

SWEEP = "plane_integration.reconcile.scheduled_sweep"

SCHEDULES = [
    # The webhook drain's safety net: a drain normally runs once per burst of deliveries
    # (request_drain); this one picks up retries that came due and any missed request.
    ScheduleSpec(
        name="stageboard.webhook_drain", func="plane_integration.drain.drain_deliveries", minutes=1
    ),
    # Catches retries whose backoff ended and anything a queued run missed.
    ScheduleSpec(name="stageboard.board_sync", func="plane_integration.sync.sync_board", minutes=1),
    # Newest changes only: drift, missed webhooks. A quiet board costs one call a project.
    ScheduleSpec(
        name="stageboard.reconcile",
        func=SWEEP,
        minutes=settings.RECONCILE_INTERVAL_MINUTES,
        kwargs={"full": False},
    ),
    # Every page, and the work items that have gone (deleted or archived).
    ScheduleSpec(
        name="stageboard.reconcile_full",
        func=SWEEP,
        minutes=settings.RECONCILE_FULL_MINUTES,
        kwargs={"full": True},
    ),
    # Comments whose backoff ended, or that waited for the board or the budget.
    ScheduleSpec(
        name="stageboard.deploy_comments",
        func="plane_integration.deploy_comments.send_deploy_comments",
        minutes=1,
    ),
]
