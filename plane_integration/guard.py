"""The deploy status guard. Pure and never-raise.

A deploy-phase status (Awaiting Deploy, Deploying, Monitoring after Deploy) is legitimate
only while the task is not finished, or while it is done and its post-deploy window is
being watched. Anything else is a stale, duplicate or unknown caller: a done task
converges to Done instead, and a cancelled one is left alone.
"""

from enum import StrEnum
from typing import NamedTuple

from pipeline.stages import TERMINAL_STAGES, Stage

GUARDED_KEYS = frozenset({"awaiting_deploy", "deploying", "monitoring"})


class Verdict(StrEnum):
    ALLOW = "ALLOW"
    CONVERGE_DONE = "CONVERGE_DONE"
    SUPPRESS = "SUPPRESS"


class Decision(NamedTuple):
    verdict: Verdict
    reason: str


def decide(db_stage: str | None, target_key: str, window_active: bool) -> Decision:
    """What to do with a request to show `target_key` on a task in `db_stage`."""
    try:
        if db_stage is None:
            return Decision(
                Verdict.ALLOW, "no task for the work item: the guard knows only the database"
            )
        if db_stage not in TERMINAL_STAGES:
            return Decision(Verdict.ALLOW, f"the task is in {db_stage}, not finished")
        if db_stage == Stage.DONE and window_active:
            return Decision(Verdict.ALLOW, "the task is done and its post-deploy window is active")
        if db_stage == Stage.DONE:
            return Decision(
                Verdict.CONVERGE_DONE,
                f"the task is done with no active window: {target_key} would be stale, "
                "so Done instead",
            )
        return Decision(Verdict.SUPPRESS, f"the task is {db_stage}: nothing is shown for it")
    except Exception as exc:  # never-raise: a broken guard must not break the board
        return Decision(Verdict.ALLOW, f"the guard failed and allowed: {exc!r}")
