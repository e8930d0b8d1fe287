"""The reconciler's decision for one work item: which repair, if any. Pure (no Django).

A sweep reads what each work item shows and compares it with the truth.
At most one repair per item, in this order:

1. no task: the item shows To Analyse -> `started` (the webhook that should have started
   it was missed); anything else is not ours to touch;
2. the item shows the task's desired status -> nothing (what Stageboard set, and its
   echo, is never drift);
3. a send is pending (or the row changed since the page was read) -> nothing: the sync
   is about to change what the item shows, so the list may already be out of date;
4. the item shows To Analyse and the task is finished -> `reopened`;
5. the item shows a cancelled-group status and the task is not finished -> `cancelled`;
6. the item shows anything else -> `reasserted`: the sync puts the truth back.
"""

from dataclasses import dataclass

STARTED, REOPENED, CANCELLED, REASSERTED, GONE = (
    "started",
    "reopened",
    "cancelled",
    "reasserted",
    "gone",
)
FINISHED_STAGES = frozenset({"done", "cancelled"})


@dataclass(frozen=True)
class Shown:
    """What the work item shows: its state, the state's group (None: unknown state)."""

    state_id: str
    group: str | None


@dataclass(frozen=True)
class Truth:
    """A task's side: its stage, the state its desired key resolves to, a send pending."""

    stage: str
    desired_state_id: str | None
    pending: bool


def decide(shown: Shown, truth: Truth | None, to_analyse_state_id: str | None) -> str | None:
    """The repair for one listed work item, or None."""
    to_analyse = to_analyse_state_id is not None and shown.state_id == to_analyse_state_id
    if truth is None:
        return STARTED if to_analyse else None
    if shown.state_id == truth.desired_state_id or truth.pending:
        return None
    finished = truth.stage in FINISHED_STAGES
    if to_analyse and finished:
        return REOPENED
    if shown.group == "cancelled" and not finished:
        return CANCELLED
    if truth.desired_state_id is None:
        return None  # the desired key shows no state in this project: nothing to put back
    return REASSERTED
