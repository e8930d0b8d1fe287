from plane_integration.board import record_desired


def show_task_changes(sender, task, change, **kwargs) -> None:
    """After a change of the truth commits, the board follows (level-triggered)."""
    record_desired(task)
