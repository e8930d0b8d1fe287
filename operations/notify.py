"""Notifications of what needs a person, sent with apprise from a q task.

`notify(kind, subject, body, group_key=..., once_key=...)` records one and returns at
once: it never sends, never raises, never makes its caller wait. Callers today: settled
deployments (rolled back, degraded alert-only, inconclusive; every outcome with
NOTIFY_ALL_DEPLOYS), the sweep (`operations.sweeps`: approvals waiting, board syncs
failing) and, later, the reconciler (`notify("reconciler_missed", ...)`).

Grouping: an occurrence joins the group's notification that still waits to be sent. A
group told less than NOTIFY_GROUP_SECONDS ago starts a new one that waits out the rest
of that time, gathering what comes meanwhile: a burst is one message, then one more.

`send_notifications` (the q task, queued on each new notification and every minute):
1. claim a due notification with a conditional UPDATE (pending -> sending);
2. send it to every NOTIFY_URLS target through apprise;
3. record sent, or retry later with a backoff, or after NOTIFY_MAX_ATTEMPTS failed
   with apprise's own words for why.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django_q.tasks import async_task

from operations.models import Notification
from pipeline.models import Deployment

logger = logging.getLogger(__name__)

State = Notification.State
QUEUED = "stageboard:notifications-queued"
CLAIM = timedelta(seconds=90)
LISTED = 20  # occurrences listed in a grouped message; the rest are counted

DEPLOY_FAILURES = {
    Deployment.Outcome.ROLLBACK_FAILED: "rollback failed",
    Deployment.Outcome.ROLLED_BACK: "rolled back",
    Deployment.Outcome.DEGRADED_ALERT_ONLY: "degraded (alert only)",
    Deployment.Outcome.INCONCLUSIVE: "inconclusive",
}
# Said first in the message's title, before anything else: a person must act now.
ROLLBACK_FAILED = "ROLLBACK FAILED"
URGENT = {"deploy_rollback_failed": ROLLBACK_FAILED}
DEPLOY_OTHERS = {
    Deployment.Outcome.SUCCEEDED: "succeeded",
    Deployment.Outcome.FAILED: "failed",
    Deployment.Outcome.ABORTED: "aborted",
}


def notify(
    kind: str,
    subject: str,
    body: str = "",
    *,
    group_key: str | None = None,
    once_key: str | None = None,
) -> Notification | None:
    """Record a notification to send (None: told already, or it could not be recorded)."""
    try:
        return _record(kind, subject[:300], body, group_key or kind, once_key)
    except IntegrityError:
        # Another worker recorded the same fact at the same moment: the unique once_key
        # let one of the two in. Told already, as far as this caller is concerned.
        return None
    except Exception:
        logger.exception("notification %s (%s) could not be recorded", kind, subject)
        return None


def _record(kind, subject, body, group_key, once_key) -> Notification | None:
    now = timezone.now()
    line = f"- {subject}" + (f": {body}" if body else "")
    with transaction.atomic():
        if once_key and Notification.objects.filter(once_key=once_key).exists():
            return None
        waiting = (
            Notification.objects.select_for_update()
            .filter(group_key=group_key, state=State.PENDING)
            .order_by("id")
            .first()
        )
        if waiting is not None:
            if waiting.occurrences < LISTED:
                waiting.body += f"\n{line}"
            waiting.occurrences += 1
            waiting.last_at = now
            waiting.save(update_fields=["body", "occurrences", "last_at"])
            if once_key:
                # The key is kept by a record of its own, already folded in and never sent.
                Notification.objects.create(
                    kind=kind,
                    group_key=group_key,
                    once_key=once_key,
                    subject=subject,
                    body=f"folded into notification {waiting.pk}",
                    state=State.SKIPPED,
                    last_at=now,
                    send_after=now,
                )
            return waiting
        told = (
            Notification.objects.filter(group_key=group_key, sent_at__isnull=False)
            .order_by("-sent_at")
            .values_list("sent_at", flat=True)
            .first()
        )
        window = timedelta(seconds=settings.NOTIFY_GROUP_SECONDS)
        send_after = max(now, told + window) if told else now
        created = Notification.objects.create(
            kind=kind,
            group_key=group_key,
            once_key=once_key,
            subject=subject,
            body=line,
            last_at=now,
            send_after=send_after,
        )
        transaction.on_commit(request_send)
    return created


def request_send() -> None:
    if cache.add(QUEUED, True, timeout=60):
        async_task("operations.notify.send_notifications", task_name="notifications")


def deployment_settled_notice(sender, deployment: Deployment, **kwargs) -> None:
    """Failures only by default: a person must look at these deploys."""
    said = DEPLOY_FAILURES.get(deployment.outcome)
    if said is None and settings.NOTIFY_ALL_DEPLOYS:
        said = DEPLOY_OTHERS.get(deployment.outcome)
    if said is None:
        return
    # People name work items as Plane does (DEMO-3 and its title); the SHA says which deploy.
    what = deployment.task.label
    if deployment.short_sha:
        what = f"{what} ({deployment.short_sha})"
    subject = f"{deployment.repo or 'deploy'}: {what} {said}"
    if deployment.outcome == Deployment.Outcome.ROLLBACK_FAILED:
        # Said first: a person must act now, production may still be degraded.
        repo = deployment.repo or "deploy"
        subject = f"{ROLLBACK_FAILED}: {repo} {what}, production may still be degraded"
    details = [
        deployment.evidence,
        deployment.action_taken and f"Stageboard did: {deployment.action_taken}",
        deployment.ci_url,
    ]
    notify(
        f"deploy_{deployment.outcome}",
        subject,
        "; ".join(d for d in details if d),
        once_key=f"deployment:{deployment.pk}:{deployment.outcome}",
    )


def deploy_refused_notice(sender, event, **kwargs) -> None:
    """A Git host reported a deploy that a gate refused (no approval yet): a person must
    approve it, or find out who deployed without one."""
    notify(
        "git_deploy_refused",
        f"{event.repo_path or event.provider}: a deploy event was refused",
        event.detail,
        once_key=f"git_event:{event.pk}",
    )


# --- sending ------------------------------------------------------------------------------


def _due(now) -> Q:
    return Q(state=State.PENDING, send_after__lte=now)


def message(notification: Notification) -> tuple[str, str]:
    urgent = URGENT.get(notification.kind)
    prefix = f"{urgent} [Stageboard]" if urgent else "[Stageboard]"
    if notification.occurrences == 1:
        subject = notification.subject
        if urgent:
            subject = subject.removeprefix(f"{urgent}: ")
        return f"{prefix} {subject}", notification.body.removeprefix("- ")
    more = notification.occurrences - min(notification.occurrences, LISTED)
    body = notification.body + (f"\n... and {more} more" if more else "")
    title = f"{prefix} {notification.occurrences} x {notification.kind.replace('_', ' ')}"
    return title, body


def send_notifications() -> dict:
    cache.delete(QUEUED)
    report = {"sent": 0, "failed": 0, "skipped": 0}
    now = timezone.now()
    # A sender that died mid-send: its claim ran out; try again (a rare second message).
    Notification.objects.filter(state=State.SENDING, claimed_until__lt=now).update(
        state=State.PENDING
    )
    for pk in (
        Notification.objects.filter(_due(now))
        .order_by("send_after", "id")
        .values_list("pk", flat=True)[:100]
    ):
        if not Notification.objects.filter(_due(now), pk=pk).update(
            state=State.SENDING, claimed_until=now + CLAIM, attempts=F("attempts") + 1
        ):
            continue  # another worker has it
        report[send_one(Notification.objects.get(pk=pk))] += 1
    return report


def send_one(notification: Notification) -> str:
    mine = Notification.objects.filter(pk=notification.pk, state=State.SENDING)
    now = timezone.now()
    if not settings.NOTIFY_URLS.strip():
        mine.update(state=State.SKIPPED, last_error="NOTIFY_URLS is empty", claimed_until=None)
        return "skipped"
    title, body = message(notification)
    sent, why = deliver(title, body)
    if sent:
        mine.update(state=State.SENT, sent_at=now, last_error="", claimed_until=None)
        return "sent"
    if notification.attempts >= settings.NOTIFY_MAX_ATTEMPTS:
        mine.update(state=State.FAILED, last_error=why, claimed_until=None)
    else:
        backoff = timedelta(seconds=30 * 2 ** (notification.attempts - 1))
        mine.update(
            state=State.PENDING, last_error=why, claimed_until=None, send_after=now + backoff
        )
    logger.warning("notification %s not sent: %s", notification.pk, why)
    return "failed"


def deliver(title: str, body: str) -> tuple[bool, str]:
    """Send to every NOTIFY_URLS target; (all sent, why not in apprise's words)."""
    # Imported here: apprise and its plugins are about 20 MB that only the worker sending
    # a notification needs, not every web and cluster process.
    import apprise

    targets = apprise.Apprise()
    if not targets.add(settings.NOTIFY_URLS):
        return False, "NOTIFY_URLS holds no URL apprise understands"
    with apprise.LogCapture(level=logging.WARNING) as captured:
        try:
            sent = targets.notify(title=title, body=body)
        except Exception as exc:
            return False, f"apprise failed: {exc!r}"
        why = captured.getvalue().strip()
    return bool(sent), why[-1000:] or ("" if sent else "apprise reported a failure")
