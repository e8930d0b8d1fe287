from pipeline.scheduling import ScheduleSpec

SCHEDULES = [
    # The safety net of the events drain (queued once per burst) and of the links.
    ScheduleSpec(name="stageboard.git_drain", func="git_hosts.drain.drain_git_events", minutes=1),
    ScheduleSpec(name="stageboard.git_links", func="git_hosts.links.send_links", minutes=1),
]
