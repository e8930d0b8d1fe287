"""An operator's decisions on a task's deploy, and on the kill-switches: one code path for the
admin, the dashboard and `manage.py ops`.

Each takes who decides (`admin:ann`, `ops:ann`) and why; the task's history and the
switchboard's change log keep both. Abort and the kill-switches need a reason.
"""

from pipeline import engine, switchboard
from pipeline.models import Task
from pipeline.stages import DeployPhase, Stage

# The switchboard's on/off flags: off stops a part of Stageboard (the dashboard's red banner).
KILL_SWITCHES = (
    "deploy_status_guard_enabled",
    "post_deploy_enabled",
    "reconcile_enabled",
    "deploy_comments_enabled",
    "git_events_enabled",
)


def because(what: str, who: str, reason: str) -> str:
    """The history's reason: `deploy aborted by admin:ann: bad migration`."""
    reason = reason.strip()
    return f"{what} by {who}: {reason}" if reason else f"{what} by {who}"


def approve(task: Task, *, who: str, reason: str = "") -> str | None:
    """Approve a deploy that awaits approval. Returns why not, or None (also when it was
    approved already: re-approving changes nothing)."""
    try:
        engine.approve_deploy(task, caller=who, reason=because("deploy approved", who, reason))
    except engine.TransitionRefused as refused:
        return refused.reason
    return None


def abort(task: Task, *, who: str, reason: str) -> str | None:
    """Abort a deploy that has not started: the task goes back to development.

    The engine offers no "fail" before a deploy runs (awaiting_approval -> failed is not a
    phase move), so an abort is the stage move deploy -> development, which the machine
    allows; the history says who and why. A running deploy is failed by whoever runs it
    (`deploy/fail/`): only they know whether it went out. Returns why not, or None.
    """
    if not reason.strip():
        return "give a reason"
    if task.stage != Stage.DEPLOY:
        return f"abort needs a task in deploy; the task is in {task.stage}"
    if task.deploy_phase not in (DeployPhase.NONE, DeployPhase.AWAITING_APPROVAL):
        return f"the deploy is {task.deploy_phase}: only its runner can fail it"
    try:
        engine.advance_stage(
            task, Stage.DEVELOPMENT, caller=who, reason=because("deploy aborted", who, reason)
        )
    except engine.TransitionRefused as refused:
        return refused.reason
    return None


def kill_switch(name: str) -> str:
    """The flag a kill-switch name means: `reconcile` or `reconcile_enabled`; ValueError
    naming the known ones otherwise."""
    field = name.strip().lower().replace("-", "_")
    field = field if field.endswith("_enabled") else f"{field}_enabled"
    if field not in KILL_SWITCHES:
        known = ", ".join(s.removesuffix("_enabled") for s in KILL_SWITCHES)
        raise ValueError(f"no kill-switch {name!r}; known: {known}")
    return field


def switch(name: str, on: bool, *, who: str, reason: str) -> bool:
    """Turn a kill-switch on or off, recorded with who and why. Returns whether it changed."""
    if not reason.strip():
        raise ValueError("give a reason")
    field = kill_switch(name)
    return bool(switchboard.update(who, reason=reason.strip(), **{field: on}))
