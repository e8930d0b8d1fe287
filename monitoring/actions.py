"""What a verdict does: for DEGRADED with a hook, roll back; then settle the deployment.

`run_action` is a q task of its own, queued in the same transaction that claimed the
verdict, so the action is never lost. It runs at most once: it claims the action with a
conditional UPDATE (pending -> running) before doing anything, and a running action is
never started again, even if its worker died; an operator sees it still running.

A rollback whose hook failed leaves the deployment `rollback_failed` and the window's
action `failed`, which the dashboard shows in red until an operator acts: **Retry
rollback** (`retry_rollback`: failed -> pending with a conditional UPDATE, then the same
queued `run_action`) or, once they rolled back by hand, `resolved_by_hand`. What the task
history, the comment and the notification say is in plain words: the hook's own output
and any exception's text stay with the window, for the admin.

The alert itself is the deployment's: once settled (`monitoring.outcomes.acted`), its
outcome becomes one comment on the work item (`plane_integration.deploy_comments`, sent
at most once, retried until Plane takes it) and a notification (`operations.notify`).
"""

import logging
import os
import subprocess

import requests
from django.db import transaction
from django.utils import timezone

from monitoring import outcomes
from monitoring.models import MonitoredRepo, MonitorWindow
from monitoring.ticks import queue_action
from pipeline import engine
from pipeline.models import Task

logger = logging.getLogger(__name__)

OUTPUT_KEPT = 2000  # characters of a hook's output kept with the window
HOOK_ENVIRONMENT = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")

Action = MonitorWindow.Action
ActionState = MonitorWindow.ActionState


def run_action(window_id: int) -> str:
    now = timezone.now()
    claimed = MonitorWindow.objects.filter(pk=window_id, action_state=ActionState.PENDING).update(
        action_state=ActionState.RUNNING, action_started_at=now
    )
    if not claimed:
        return "taken"  # another worker has it, or it ran already
    window = MonitorWindow.objects.select_related("task").get(pk=window_id)
    ok, result, output = True, "alerted (the deployment's comment and notification)", ""
    did = "alert only, no rollback"
    if window.action == Action.ROLLBACK:
        ok, result, output = roll_back(window)
        did = (
            f"rolled back ({result})"
            if ok
            else f"tried to roll back, but {result}; production may still be degraded"
        )
    with transaction.atomic():
        MonitorWindow.objects.filter(pk=window_id).update(
            action_state=ActionState.DONE if ok else ActionState.FAILED,
            action_finished_at=timezone.now(),
            action_result=result[:200],
            action_output=output[-OUTPUT_KEPT:],
        )
        outcomes.acted(window, did, ok=ok)
        if window.action == Action.ROLLBACK:
            engine.record_note(window.task, caller="monitor", reason=did)
    (logger.error if not ok or window.action == Action.ROLLBACK else logger.warning)(
        "post-deploy %s for %s on %s: %s; %s",
        window.verdict,
        window.task.work_item_id,
        window.repo,
        window.verdict_reason,
        result,
        extra={
            "event": "post_deploy_verdict",
            "work_item": str(window.task.work_item_id),
            "repo": window.repo,
            "verdict": window.verdict,
            "action": window.action,
            "action_result": result,
        },
    )
    return result


def roll_back(window: MonitorWindow) -> tuple[bool, str, str]:
    """Run the repo's rollback hook; (succeeded, result, output excerpt)."""
    repo = MonitoredRepo.objects.filter(name=window.repo).first()
    if repo is None or not repo.has_rollback:
        return False, "no rollback hook is configured for the repo", ""
    if repo.rollback_command:
        # Only what a hook needs: never Stageboard's own secrets (keys, database URL).
        env = {
            **{k: os.environ[k] for k in HOOK_ENVIRONMENT if k in os.environ},
            "STAGEBOARD_REPO": window.repo,
            "STAGEBOARD_WORK_ITEM": str(window.task.work_item_id),
            "STAGEBOARD_VERDICT_REASON": window.verdict_reason,
        }
        try:
            done = subprocess.run(
                repo.rollback_command,
                capture_output=True,
                text=True,
                timeout=repo.rollback_timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            output = (
                (exc.stdout or b"").decode(errors="replace")
                if isinstance(exc.stdout, bytes)
                else (exc.stdout or "")
            )
            return (
                False,
                f"the rollback command did not finish in {repo.rollback_timeout} s",
                output,
            )
        except OSError as exc:
            return (
                False,
                "the rollback command could not be started",
                f"{type(exc).__name__}: {exc}",
            )
        if done.returncode != 0:
            result = f"the rollback command exited with code {done.returncode}"
            return False, result, done.stdout + done.stderr
        return True, "exit 0", done.stdout + done.stderr
    try:
        response = requests.post(
            repo.rollback_url,
            json={
                "repo": window.repo,
                "work_item": str(window.task.work_item_id),
                "verdict": window.verdict,
                "reason": window.verdict_reason,
            },
            timeout=repo.rollback_timeout,
        )
    except requests.Timeout as exc:
        why = f"the rollback URL did not answer in {repo.rollback_timeout} s"
        return False, why, f"{type(exc).__name__}: {exc}"
    except requests.RequestException as exc:
        return False, "the rollback URL could not be reached", f"{type(exc).__name__}: {exc}"
    if not response.ok:
        return False, f"the rollback URL answered HTTP {response.status_code}", response.text
    return True, f"HTTP {response.status_code}", response.text


# --- the operator's say on a failed rollback -------------------------------------------


def failed_rollback(task: Task) -> MonitorWindow | None:
    """The task's current window whose rollback failed and nobody acted on yet."""
    return (
        MonitorWindow.objects.select_related("task")
        .filter(
            task=task,
            cycle=task.cycle,
            action=Action.ROLLBACK,
            action_state=ActionState.FAILED,
        )
        .first()
    )


def retry_rollback(task: Task, *, caller: str, reason: str = "") -> MonitorWindow:
    """Run the failed rollback's hook again, through the same queued, at-most-once path.

    1. a conditional UPDATE moves the action from failed back to pending (of two
       operators pressing at once, one wins; the other is told nothing is left to retry);
    2. the task's history records who asked, in the same transaction;
    3. `run_action` is queued in that transaction too, so the retry is never lost.
    Raises `engine.TransitionRefused` when there is no failed rollback to retry.
    """
    window = failed_rollback(task)
    if window is None:
        raise engine.TransitionRefused(
            "retry-rollback needs a deploy whose rollback failed; this task has none"
        )
    repo = MonitoredRepo.objects.filter(name=window.repo).first()
    with transaction.atomic():
        claimed = MonitorWindow.objects.filter(
            pk=window.pk, action=Action.ROLLBACK, action_state=ActionState.FAILED
        ).update(
            action_state=ActionState.PENDING,
            action_result=f"retry requested by {caller}",
            action_started_at=None,
            action_finished_at=None,
        )
        if not claimed:
            raise engine.TransitionRefused("the rollback is being retried already")
        engine.record_note(
            task, caller=caller, reason=reason or f"rollback retry requested by {caller}"
        )
        queue_action(window.pk, repo)
    window.refresh_from_db()
    return window


def resolved_by_hand(task: Task, *, caller: str, reason: str = "") -> MonitorWindow:
    """An operator rolled production back without the hook: the deploy is rolled back."""
    window = failed_rollback(task)
    if window is None:
        raise engine.TransitionRefused("there is no failed rollback to mark as done by hand")
    with transaction.atomic():
        claimed = MonitorWindow.objects.filter(
            pk=window.pk, action=Action.ROLLBACK, action_state=ActionState.FAILED
        ).update(
            action_state=ActionState.DONE,
            action_result=f"rolled back by hand ({caller})",
            action_finished_at=timezone.now(),
        )
        if not claimed:
            raise engine.TransitionRefused("the rollback is being retried already")
        did = f"rolled back by hand ({caller})"
        outcomes.acted(window, did, ok=True)
        engine.record_note(task, caller=caller, reason=reason or did)
    window.refresh_from_db()
    return window
