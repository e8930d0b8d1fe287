"""Carry out the board's two human controls through the stage engine.

The webhook and the reconciler both come here, so a late webhook racing a sweep over the
same move makes one task and one history entry: the engine's row lock and the unique work
item id decide, not what either caller read before.
"""

from pipeline import engine
from pipeline.models import Task
from pipeline.stages import TERMINAL_STAGES, Stage
from pipeline.text import clean_text
from plane_integration import identifiers
from plane_integration.models import PlaneProject

STARTED, REOPENED, CANCELLED = "started", "reopened", "cancelled"
TITLE_MAX_CHARS = Task._meta.get_field("title").max_length


def start(
    project: PlaneProject,
    work_item_id: str,
    title: str,
    task: Task | None,
    *,
    caller: str,
    why: str,
    sequence_id: int | None = None,
) -> tuple[str | None, str]:
    """ "Moved to To Analyse": create the task, or re-open a finished one.

    Returns (STARTED or REOPENED, what happened), or (None, why nothing changed).
    """
    if task is None:
        task, created = engine.create_task(
            work_item_id=work_item_id,
            project_id=project.project_id,
            # The name is only a title: what no column can hold is replaced, not refused.
            title=clean_text(title)[:TITLE_MAX_CHARS],
            repo=project.repo,
            identifier=identifiers.identifier(project, sequence_id),
        )
        if created:
            return STARTED, f"{why}: task created in analysis"
        # Another delivery or sweep created it since we looked: only that one records it.
        return None, f"{why}, but the task was created meanwhile: left alone"
    if engine.reopen_task(task, caller=caller, reason=why).changed:
        return REOPENED, f"{why}: task re-opened in analysis (cycle {task.cycle})"
    return None, f"{why}, but the task is in {task.stage} already: left alone"


def cancel(task: Task | None, *, caller: str, why: str) -> tuple[str | None, str]:
    """ "Moved to a cancelled status": cancel a task in progress; a finished one stays."""
    if task is None or task.stage in TERMINAL_STAGES:
        return None, f"{why}, but there is no task in progress to cancel"
    if engine.advance_stage(task, Stage.CANCELLED, caller=caller, reason=why).changed:
        return CANCELLED, f"{why}: task cancelled"
    return None, f"{why}, but the task is cancelled already"
