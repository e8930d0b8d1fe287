from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    # Each run ticks the due windows, and keeps ticking short intervals until the next run.
    ScheduleSpec(name="stageboard.monitor_tick", func="monitoring.ticks.monitor_tick", minutes=1),
]
