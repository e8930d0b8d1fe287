"""The stage machine's vocabulary and rules. Pure: no Django here.

The names are a contract: operators' scripts and the REST API use them as they are.
"""

from collections.abc import Mapping
from enum import StrEnum


class Stage(StrEnum):
    ANALYSIS = "analysis"
    DEVELOPMENT = "development"
    CODE_REVIEW = "code_review"
    DEPLOY = "deploy"
    DONE = "done"
    CANCELLED = "cancelled"


class DeployPhase(StrEnum):
    # A task that has entered `deploy` but whose deploy nobody asked for yet.
    NONE = ""
    AWAITING_APPROVAL = "awaiting_approval"
    DEPLOYING = "deploying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


TERMINAL_STAGES = frozenset({Stage.DONE, Stage.CANCELLED})

STAGE_TRANSITIONS: Mapping[Stage, frozenset[Stage]] = {
    Stage.ANALYSIS: frozenset({Stage.DEVELOPMENT, Stage.CANCELLED}),
    Stage.DEVELOPMENT: frozenset({Stage.CODE_REVIEW, Stage.CANCELLED}),
    Stage.CODE_REVIEW: frozenset({Stage.DEVELOPMENT, Stage.DEPLOY, Stage.CANCELLED}),
    Stage.DEPLOY: frozenset({Stage.DONE, Stage.DEVELOPMENT, Stage.CANCELLED}),
    # Terminal: the only way out is re-opening (engine.reopen_task), a human control.
    Stage.DONE: frozenset(),
    Stage.CANCELLED: frozenset(),
}

# Within `deploy`, the phase moves forward only. Approval is not a phase of its own:
# it is recorded on the task and checked by a gate on awaiting_approval -> deploying.
DEPLOY_PHASE_TRANSITIONS: Mapping[DeployPhase, frozenset[DeployPhase]] = {
    DeployPhase.NONE: frozenset({DeployPhase.AWAITING_APPROVAL}),
    DeployPhase.AWAITING_APPROVAL: frozenset({DeployPhase.DEPLOYING}),
    DeployPhase.DEPLOYING: frozenset({DeployPhase.SUCCEEDED, DeployPhase.FAILED}),
    DeployPhase.SUCCEEDED: frozenset(),
    DeployPhase.FAILED: frozenset(),
}


def stage_transition_refusal(current: Stage, to: Stage) -> str | None:
    """Why `current -> to` is not a transition of the machine, or None when it is."""
    if to in STAGE_TRANSITIONS[current]:
        return None
    if current in TERMINAL_STAGES:
        return f"task is {current}, a terminal stage; only re-opening it leads out"
    allowed = ", ".join(sorted(STAGE_TRANSITIONS[current]))
    return f"{current} -> {to} is not allowed; from {current} a task can go to {allowed}"


def phase_transition_refusal(current: DeployPhase, to: DeployPhase) -> str | None:
    """Why the deploy phase cannot go `current -> to`, or None when it can."""
    if to in DEPLOY_PHASE_TRANSITIONS[current]:
        return None
    shown = current or "not requested"
    return f"deploy phase {shown} cannot become {to}"
