"""What a verdict does: for DEGRADED with a hook, roll back; then settle the deployment.

`run_action` is a q task of its own, queued in the same transaction that claimed the
verdict, so the action is never lost. It runs at most once: it claims the action with a
conditional UPDATE (pending -> running) before doing anything, and a running action is
never started again, even if its worker died; an operator sees it still running.

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
        did = f"rolled back ({result})" if ok else f"rollback failed: {result}"
    with transaction.atomic():
        MonitorWindow.objects.filter(pk=window_id).update(
            action_state=ActionState.DONE if ok else ActionState.FAILED,
            action_finished_at=timezone.now(),
            action_result=result[:200],
            action_output=output[-OUTPUT_KEPT:],
        )
        outcomes.acted(window, did)
    logger.error(
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
        return False, "no rollback hook configured", ""
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
            return False, f"timed out after {repo.rollback_timeout} s", output
        except OSError as exc:
            return False, f"cannot run the rollback command: {exc}", ""
        return done.returncode == 0, f"exit {done.returncode}", done.stdout + done.stderr
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
    except requests.RequestException as exc:
        return False, f"rollback call failed: {exc}", ""
    return response.ok, f"HTTP {response.status_code}", response.text
