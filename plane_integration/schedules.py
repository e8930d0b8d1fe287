from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    # Catches retries whose backoff ended and anything a queued run missed.
    ScheduleSpec(name="stageboard.board_sync", func="plane_integration.sync.sync_board", minutes=1),
]
