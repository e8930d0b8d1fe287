"""Which stage a task's pull requests call for, and how the stage machine gets there. Pure.

The stage is read from all of a task's pull requests together, not from the last event,
so the order in which the host delivers events matters less.
"""

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from pipeline.stages import STAGE_TRANSITIONS, DeployPhase, Stage

# PR events move a task only in these stages, or in deploy before its deploy started.
MOVABLE_STAGES = frozenset({Stage.ANALYSIS, Stage.DEVELOPMENT, Stage.CODE_REVIEW})
NOT_STARTED = frozenset({DeployPhase.NONE, DeployPhase.AWAITING_APPROVAL})


@dataclass(frozen=True)
class PullRequestFacts:
    state: str  # open, draft, merged, closed
    changes_requested: bool
    into_default_branch: bool


def called_stage(prs: Iterable[PullRequestFacts]) -> Stage | None:
    """Any open, ready PR (no changes requested) -> code_review; else any open draft (or
    an open PR with changes requested) -> development; else one merged into the default
    branch -> deploy; else (all closed unmerged, or merged elsewhere) -> development.
    None for a task with no pull request."""
    prs = list(prs)
    if not prs:
        return None
    if any(pr.state == "open" and not pr.changes_requested for pr in prs):
        return Stage.CODE_REVIEW
    if any(pr.state in ("open", "draft") for pr in prs):
        return Stage.DEVELOPMENT
    if any(pr.state == "merged" and pr.into_default_branch for pr in prs):
        return Stage.DEPLOY
    return Stage.DEVELOPMENT


def movable(stage: str, phase: str) -> bool:
    """Whether pull request events may move a task at this stage and deploy phase."""
    return stage in MOVABLE_STAGES or (stage == Stage.DEPLOY and phase in NOT_STARTED)


# The stages a walk may pass through: never a terminal one on the way.
_WALKABLE = frozenset({Stage.ANALYSIS, Stage.DEVELOPMENT, Stage.CODE_REVIEW, Stage.DEPLOY})


def walk(current: Stage, to: Stage) -> list[Stage]:
    """The shortest list of stages from `current` (excluded) to `to` (included) along
    the machine's allowed transitions through non-terminal stages; [] when already there
    or when there is no way."""
    if current == to:
        return []
    before: dict[Stage, Stage] = {}
    queue = deque([current])
    while queue:
        stage = queue.popleft()
        for nxt in sorted(STAGE_TRANSITIONS[stage]):
            if nxt not in _WALKABLE or nxt in before or nxt == current:
                continue
            before[nxt] = stage
            if nxt == to:
                path = [to]
                while path[-1] in before and before[path[-1]] != current:
                    path.append(before[path[-1]])
                return path[::-1]
            queue.append(nxt)
    return []
