"""What the monitor's verdicts mean for the delivery record (`pipeline.deployments`).

The monitor writes no deployment itself: it calls these, in the transactions where it
arms, judges, acts and aborts, so the record and the window never disagree.
"""

from monitoring.analysis import number
from monitoring.classifier import ProbeResult, Verdict
from monitoring.models import CheckMeasurement, MonitorWindow
from pipeline import deployments
from pipeline.models import Deployment, Task

Action = MonitorWindow.Action
Outcome = Deployment.Outcome


def armed(task: Task, window: MonitorWindow) -> None:
    """The deploy is watched: it settles at the verdict, not at its finish."""
    deployments.watch(task, window.pk)


def outcome_for(verdict: str, action: str, *, action_ok: bool = True) -> str:
    if verdict == Verdict.DEGRADED:
        if action != Action.ROLLBACK:
            return Outcome.DEGRADED_ALERT_ONLY
        return Outcome.ROLLED_BACK if action_ok else Outcome.ROLLBACK_FAILED
    if verdict == Verdict.INCONCLUSIVE:
        return Outcome.INCONCLUSIVE
    return Outcome.SUCCEEDED


def evidence(window: MonitorWindow) -> str:
    numbers = (
        f"{window.probes_measured} probes measured, {window.consecutive_failures} failing in a "
        f"row at the end, {window.server_errors} answered 5xx, {window.probes_unmeasured} "
        f"could not be made"
    )
    if window.source_ratio is not None:
        numbers += f"; error-rate source: {window.source_ratio:.1%}"
    checks = checks_evidence(window)
    return f"{window.verdict_reason}. {numbers}." + (f" Checks: {checks}." if checks else "")


def checks_evidence(window: MonitorWindow) -> str:
    """Per check: its failures, and its values over the window against its condition."""
    by_check: dict[str, list[CheckMeasurement]] = {}
    for m in CheckMeasurement.objects.filter(window=window).order_by("at", "id"):
        by_check.setdefault(m.check_name, []).append(m)
    parts = []
    for name, rows in by_check.items():
        failed = sum(m.result == ProbeResult.FAILURE for m in rows)
        values = [number(m.value) for m in rows if m.value is not None]
        shown = ", ".join(values[-10:]) or "no value"
        if len(values) > 10:
            shown = "..., " + shown
        parts.append(
            f"{name} ({rows[-1].condition}) failed {failed} of {len(rows)}, values {shown}"
        )
    return "; ".join(parts)


def judged(window: MonitorWindow) -> None:
    """The verdict was claimed; a verdict with an action settles when the action ends."""
    deployments.record_verdict(
        window.task,
        window.cycle,
        outcome=outcome_for(window.verdict, window.action),
        verdict=window.verdict,
        evidence=evidence(window),
        action_taken="nothing" if window.action == Action.NONE else "",
        settle=window.action == Action.NONE,
    )


def acted(window: MonitorWindow, result: str, *, ok: bool = True) -> None:
    """The action ended (`ok`: the rollback hook succeeded, or there was none to run)."""
    deployments.record_verdict(
        window.task,
        window.cycle,
        outcome=outcome_for(window.verdict, window.action, action_ok=ok),
        action_taken=result,
        settle=True,
    )


def aborted(task: Task, cycle: int, why: str) -> None:
    """No verdict will come: the deploy stays succeeded, and says why it was not judged."""
    deployments.record_verdict(
        task,
        cycle,
        outcome=Outcome.SUCCEEDED,
        evidence=f"monitor window aborted: {why}",
        action_taken="nothing",
        settle=True,
    )
