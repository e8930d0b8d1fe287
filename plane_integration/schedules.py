from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    # Catches retries whose backoff ended and anything a queued run missed.
    ScheduleSpec(name="stageboard.board_sync", func="plane_integration.sync.sync_board", minutes=1),
    # Comments whose backoff ended, or that waited for the board or the budget.
    ScheduleSpec(
        name="stageboard.deploy_comments",
        func="plane_integration.deploy_comments.send_deploy_comments",
        minutes=1,
    ),
]
