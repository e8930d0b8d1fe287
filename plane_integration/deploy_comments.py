"""One comment per deploy outcome on the task's work item, below the board's priority.

A settled deployment (`pipeline.signals.deployment_settled`) records a `DeployComment`
for its outcome (unique per deployment and outcome) and asks for a run of
`send_deploy_comments`, a q task that also runs every minute. A run, per comment:
1. claims the comment with a conditional UPDATE (pending, due, unclaimed), so of several
   workers exactly one sends it;
2. posts it only if the rate budget keeps a slot for every board row due now plus a
   reserve (a tenth of the limit): a status change never waits for a comment;
3. records sent or skipped; on a refusal it retries later with a backoff, and when
   the budget is spent it keeps its place and ends the run. A request that may have
   reached Plane (no answer) is never resent: a missing comment beats a double one.
"""

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone
from django.utils.html import escape
from django_q.tasks import async_task

from pipeline import switchboard
from pipeline.models import Deployment
from plane_integration.comments import post_comment
from plane_integration.models import BoardStatus, DeployComment
from plane_integration.setters import Result
from plane_integration.sync import due as board_row_due

logger = logging.getLogger(__name__)

State = DeployComment.State
Outcome = Deployment.Outcome
CALLER = "deploy-comments"
QUEUED = "stageboard:deploy-comments-queued"
CLAIM = timedelta(seconds=90)
MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(minutes=30)

HEADLINES = {
    Outcome.SUCCEEDED: "Deployed",
    Outcome.FAILED: "Deploy failed",
    Outcome.ROLLED_BACK: "Deploy rolled back",
    Outcome.ROLLBACK_FAILED: "Rollback FAILED: production may still be degraded",
    Outcome.DEGRADED_ALERT_ONLY: "Deploy degraded (alert only)",
    Outcome.INCONCLUSIVE: "Deploy inconclusive",
    Outcome.ABORTED: "Deploy aborted",
}


def budget_reserve() -> int:
    """Slots of the rate budget a comment leaves to the board sync beyond its due rows
    (which may become due while the comment is in flight): a tenth, at least one."""
    return max(1, settings.PLANE_RATE_LIMIT_PER_MINUTE // 10)


# --- recording ----------------------------------------------------------------------------


def record(sender, deployment: Deployment, **kwargs) -> None:
    """On `deployment_settled`: the outcome's comment, once, unless switched off."""
    if not switchboard.get().deploy_comments_enabled:
        return
    _, created = DeployComment.objects.get_or_create(
        deployment=deployment,
        outcome=deployment.outcome,
        defaults={"next_attempt_at": timezone.now()},
    )
    if created:
        request_send()


def request_send() -> None:
    if cache.add(QUEUED, True, timeout=60):
        async_task("plane_integration.deploy_comments.send_deploy_comments", task_name="comments")


# --- the comment --------------------------------------------------------------------------


def comment_html(deployment: Deployment) -> str:
    """What was deployed, what production showed (with the evidence), what Stageboard did."""
    headline = HEADLINES.get(deployment.outcome, "Deploy")
    sha = escape(deployment.short_sha)
    if sha and deployment.ci_url:
        sha = f'<a href="{escape(deployment.ci_url)}">{sha}</a>'
    what = sha or "a change with no commit given"
    if deployment.ref:
        what += f" ({escape(deployment.ref)})"
    what += f" of {escape(deployment.repo or 'its repo')} to {escape(deployment.environment)}"
    if not deployment.commit_sha and deployment.ci_url:
        what += f' (<a href="{escape(deployment.ci_url)}">CI run</a>)'
    parts = [f"<p><strong>{escape(headline)}</strong>: {what}.</p>"]
    if deployment.verdict:
        if deployment.outcome == Outcome.ROLLED_BACK:
            how = "roll back"
        elif deployment.outcome == Outcome.ROLLBACK_FAILED:
            how = "roll back, which failed"
        elif deployment.outcome == Outcome.DEGRADED_ALERT_ONLY:
            how = "alert only, no rollback"
        else:
            how = "no rollback"
        parts.append(
            f"<p>Post-deploy monitor: <strong>{escape(deployment.verdict)} ({how})</strong>. "
            f"{escape(deployment.evidence)}</p>"
        )
    elif deployment.evidence:
        parts.append(f"<p>{escape(deployment.evidence)}</p>")
    parts.append(f"<p>Stageboard did: {escape(deployment.action_taken or 'nothing')}.</p>")
    if deployment.outcome == Outcome.ROLLBACK_FAILED:
        parts.append(
            "<p>Where to look: in Stageboard's admin, the task's post-deploy window keeps the "
            "rollback hook's output. Fix the hook or roll back by hand, then press "
            "<strong>Retry rollback</strong> on the dashboard.</p>"
        )
    return "".join(parts)


# --- sending ------------------------------------------------------------------------------


def _due(now) -> Q:
    return Q(state=State.PENDING, next_attempt_at__lte=now) & (
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    )


def send_deploy_comments(max_seconds: float | None = None) -> dict:
    cache.delete(QUEUED)
    deadline = time.monotonic() + (max_seconds or settings.Q_CLUSTER["timeout"] / 2)
    report = {"sent": 0, "skipped": 0, "failed": 0}
    if not switchboard.get().deploy_comments_enabled:
        report["skipped"] = DeployComment.objects.filter(state=State.PENDING).update(
            state=State.SKIPPED, last_error="deploy comments are switched off", claimed_until=None
        )
        return report
    tried: set[int] = set()
    while time.monotonic() < deadline:
        now = timezone.now()
        pk = (
            DeployComment.objects.filter(_due(now))
            .exclude(pk__in=tried)
            .order_by("next_attempt_at", "id")
            .values_list("pk", flat=True)
            .first()
        )
        if pk is None:
            break
        tried.add(pk)
        if not DeployComment.objects.filter(_due(now), pk=pk).update(claimed_until=now + CLAIM):
            continue  # another worker has it
        # Every board row due now keeps its slot, and a reserve beyond them.
        reserve = budget_reserve() + BoardStatus.objects.filter(board_row_due(now)).count()
        if not send_one(pk, report, reserve):
            break
    return report


def send_one(pk: int, report: dict, reserve: int) -> bool:
    """Send one claimed comment; False when the budget is spent (end the run)."""
    comment = DeployComment.objects.select_related("deployment__task").get(pk=pk)
    deployment = comment.deployment
    outcome = post_comment(
        deployment.task,
        comment_html(deployment),
        caller=CALLER,
        reason=comment.outcome,
        reserve=reserve,
    )
    now = timezone.now()
    mine = DeployComment.objects.filter(pk=pk)
    if outcome.result in (Result.SENT, Result.SKIPPED):
        sent = outcome.result is Result.SENT
        mine.update(
            state=State.SENT if sent else State.SKIPPED,
            sent_at=now if sent else None,
            last_error=outcome.why,
            claimed_until=None,
            next_attempt_at=None,
        )
        report["sent" if sent else "skipped"] += 1
        return True
    if outcome.retry_after is not None:
        mine.update(
            claimed_until=None, next_attempt_at=now + timedelta(seconds=outcome.retry_after)
        )
        return False
    attempts = comment.attempts + 1
    # No HTTP answer and not "cannot reach": Plane may hold the comment. Never resend it.
    maybe_posted = outcome.status is None and not outcome.why.startswith("cannot reach Plane")
    if maybe_posted or attempts >= MAX_ATTEMPTS:
        mine.update(
            state=State.FAILED,
            attempts=attempts,
            last_error=outcome.why,
            claimed_until=None,
            next_attempt_at=None,
        )
        report["failed"] += 1
        return True
    backoff = min(timedelta(seconds=15 * 2 ** (attempts - 1)), MAX_BACKOFF)
    mine.update(
        attempts=attempts, last_error=outcome.why, claimed_until=None, next_attempt_at=now + backoff
    )
    report["failed"] += 1
    return True
