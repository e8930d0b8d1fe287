from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    ScheduleSpec(
        name="stageboard.prune_failed_task_results",
        func="pipeline.housekeeping.prune_failed_task_results",
        minutes=24 * 60,
    ),
]
