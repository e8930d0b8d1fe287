from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    # Retries of notifications, and groups whose waiting time ended.
    ScheduleSpec(
        name="stageboard.notifications", func="operations.notify.send_notifications", minutes=1
    ),
    ScheduleSpec(name="stageboard.notify_sweep", func="operations.sweeps.notify_sweep", minutes=1),
]
