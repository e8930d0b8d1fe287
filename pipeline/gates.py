"""Quality gates: named, pure checks bound to the transitions they guard.

A gate reads the facts of a task (never the database, never the network) and says pass
or fail with a reason. The engine runs every gate bound to a transition before making
it; the first failure refuses the transition with that gate's reason and nothing changes.
New gates register themselves with `@gate(...)` at import of this module.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pipeline.stages import DeployPhase, Stage


class TaskFacts(Protocol):
    stage: str
    deploy_phase: str
    deploy_approved_at: datetime | None


@dataclass(frozen=True)
class GateResult:
    gate: str
    passed: bool
    reason: str = ""


Gate = Callable[[TaskFacts], GateResult]

# Keyed by ("stage" | "phase", from, to): stage and deploy-phase transitions are
# guarded by the same mechanism but live in separate namespaces.
_REGISTRY: dict[tuple[str, str, str], list[Gate]] = {}


def gate(
    *,
    stage: tuple[Stage, Stage] | None = None,
    phase: tuple[DeployPhase, DeployPhase] | None = None,
):
    """Bind the decorated check to one stage transition or one deploy-phase transition."""
    if (stage is None) == (phase is None):
        raise TypeError("bind a gate to exactly one of stage=(from, to) or phase=(from, to)")
    key = ("stage", *stage) if stage else ("phase", *phase)

    def register(check: Gate) -> Gate:
        _REGISTRY.setdefault(key, []).append(check)
        return check

    return register


def gates_for(kind: str, current: str, to: str) -> list[Gate]:
    return list(_REGISTRY.get((kind, current, to), ()))


def first_failure(kind: str, task: TaskFacts, to: str) -> GateResult | None:
    """Run the gates bound to the task's move to `to`; return the first that fails."""
    current = task.stage if kind == "stage" else task.deploy_phase
    for check in gates_for(kind, current, to):
        result = check(task)
        if not result.passed:
            return result
    return None


@gate(stage=(Stage.DEPLOY, Stage.DONE))
def check_deploy_status(task: TaskFacts) -> GateResult:
    """A task is done only after its deploy succeeded."""
    if task.deploy_phase == DeployPhase.SUCCEEDED:
        return GateResult("check_deploy_status", True)
    shown = task.deploy_phase or "not requested"
    return GateResult(
        "check_deploy_status",
        False,
        f"deploy -> done needs a succeeded deploy; the deploy phase is {shown}",
    )


@gate(phase=(DeployPhase.AWAITING_APPROVAL, DeployPhase.DEPLOYING))
def check_deploy_approved(task: TaskFacts) -> GateResult:
    """A deploy starts only after an operator approved it."""
    if task.deploy_approved_at is not None:
        return GateResult("check_deploy_approved", True)
    return GateResult(
        "check_deploy_approved", False, "the deploy has not been approved by an operator yet"
    )
