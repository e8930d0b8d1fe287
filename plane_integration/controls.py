"""The board's two human controls. Pure.

Moving a work item into To Analyse (or creating it there) starts or re-opens its task;
moving it into a cancelled-group status cancels it. Every other move is drift for the
reconciler, never an instruction.
"""

from enum import StrEnum

from plane_integration.webhook_payloads import Delivery


class Control(StrEnum):
    START = "start"
    CANCEL = "cancel"
    NONE = "none"


def human_control(
    delivery: Delivery, *, to_analyse_state_id: str | None, new_state_group: str | None
) -> tuple[Control, str]:
    """Which control a delivery is, with the reason (also for none)."""
    if not delivery.is_work_item:
        return Control.NONE, f"{delivery.event} events are not board controls"
    creation = delivery.action == "created"
    if not (creation or delivery.is_state_change):
        what = f"{delivery.field} changed" if delivery.field else f"work item {delivery.action}"
        return Control.NONE, f"{what}: not a board control"
    if delivery.new_state_id is None:
        return Control.NONE, "the delivery names no state"
    if to_analyse_state_id and delivery.new_state_id == to_analyse_state_id:
        how = "created in" if creation else "moved to"
        return Control.START, f"{how} To Analyse"
    if new_state_group == "cancelled" and not creation:
        return Control.CANCEL, "moved to a cancelled status"
    where = new_state_group or "an unknown"
    return Control.NONE, f"{'created' if creation else 'moved'} in a {where} status: not a control"
