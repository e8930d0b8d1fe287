"""Act on one stored Git host event: pull requests move tasks, deploys finish them.

`process_event(pk)` is the drain's unit of work. Its steps:
1. read the fact the body states (`payloads.read`); a shape we do not read, a repository
   linked to no Stageboard repo, or the kill-switch off: ignored, with the reason;
2. before any transaction, ask Plane what only Plane knows (a project's identifier, a
   work item named before it has a task): no row lock waits on the network, and a Plane
   outage fails the event to be retried, changing nothing;
3. in one transaction: lock the event's row (another worker may have done it), apply the
   fact through the stage engine, and record the outcome, its detail and its tasks.

A pull request keeps the host's time of the last event applied to it, so an older event
changes nothing (stale); a stage the task already has is a no-op of the engine.
"""

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from git_hosts import links, payloads, rules
from git_hosts.models import GitEvent, GitRepo, PullRequest, PullRequestLink
from git_hosts.signals import deploy_refused
from pipeline import deployments, engine, switchboard, work_items
from pipeline.models import StageChange, Task
from pipeline.stages import DeployPhase, Stage
from pipeline.text import clean_text

logger = logging.getLogger(__name__)

Outcome = GitEvent.Outcome
TRANSIENT = (work_items.Unreadable, OperationalError, InterfaceError, IntegrityError)
CALLER_MAX = StageChange._meta.get_field("caller").max_length
TITLE_MAX = Task._meta.get_field("title").max_length


class Result:
    """What applying one event did: its outcome, what to say, the tasks it touched."""

    def __init__(self):
        self.lines: list[str] = []
        self.tasks: list[Task] = []
        self.applied = self.refused = False

    def said(self, line: str, task: Task | None = None, *, applied=False, refused=False):
        self.lines.append(line)
        if task is not None and task not in self.tasks:
            self.tasks.append(task)
        self.applied |= applied
        self.refused |= refused

    def outcome(self) -> str:
        if self.refused:
            return Outcome.REFUSED
        return Outcome.APPLIED if self.applied else Outcome.IGNORED


def process_event(pk: int) -> str:
    """Act on one stored event once; return its outcome (see the module's steps)."""
    try:
        row = GitEvent.objects.filter(pk=pk).first()
        if row is None or row.outcome not in (Outcome.PENDING, Outcome.FAILED):
            return row.outcome if row else Outcome.IGNORED
        fact, repo, why_not = read(row)
        if fact is not None and isinstance(fact, payloads.PullRequestEvent):
            start_named_tasks(fact, repo)  # step 2: Plane, outside any transaction
        with transaction.atomic():
            row = GitEvent.objects.select_for_update().get(pk=pk)
            if row.outcome not in (Outcome.PENDING, Outcome.FAILED):
                return row.outcome
            if fact is None:
                outcome, detail, tasks = Outcome.IGNORED, why_not, []
            elif isinstance(fact, payloads.PullRequestEvent):
                outcome, detail, tasks = apply_pull_request(fact, repo, row.provider)
            else:
                outcome, detail, tasks = apply_deploy(fact, repo, row.provider)
            finish(row, outcome, detail)
            if tasks:
                row.tasks.add(*tasks)
    except Exception as exc:
        fail(pk, exc)
        return Outcome.FAILED
    logger.info(
        "git event %s %s: %s",
        pk,
        outcome,
        detail,
        extra={"event": "git_event", "git_event": pk, "outcome": outcome, "detail": detail},
    )
    if outcome == Outcome.REFUSED:
        transaction.on_commit(lambda: deploy_refused.send_robust(sender=GitEvent, event=row))
    return outcome


def read(row: GitEvent):
    """(fact, its linked repo, None) or (None, None, why it changes nothing)."""
    try:
        fact = payloads.read(row.provider, row.event, json.loads(bytes(row.body)))
    except payloads.Ignored as ignored:
        return None, None, str(ignored)
    except (ValueError, RecursionError):
        return None, None, "the body is not JSON"
    repo = GitRepo.objects.filter(provider=row.provider, path__iexact=fact.repo_path).first()
    if repo is None:
        why = f"{row.provider}:{fact.repo_path} is linked to no Stageboard repo (repo set --git)"
        return None, None, clean_text(why)
    if not switchboard.get().git_events_enabled:
        return None, None, "git_events_enabled is off: recorded, nothing moved"
    return fact, repo, None


def finish(row: GitEvent, outcome: str, detail: str) -> None:
    row.outcome, row.detail = outcome, clean_text(detail)
    row.attempts += 1
    row.processed_at = timezone.now()
    row.claimed_until = row.retry_at = None
    row.save(
        update_fields=["outcome", "detail", "attempts", "processed_at", "claimed_until", "retry_at"]
    )


def fail(pk: int, exc: Exception) -> None:
    """Record a failure; a transient one is retried (Q_RETRY on), up to Q_MAX_ATTEMPTS."""
    attempts = (GitEvent.objects.filter(pk=pk).values_list("attempts", flat=True).first() or 0) + 1
    retried = isinstance(exc, TRANSIENT) and attempts < settings.Q_CLUSTER["max_attempts"]
    GitEvent.objects.filter(pk=pk).update(
        outcome=Outcome.FAILED,
        detail=clean_text(f"{type(exc).__name__}: {exc}"),
        attempts=F("attempts") + 1,
        claimed_until=None,
        retry_at=timezone.now() + timedelta(seconds=settings.Q_CLUSTER["retry"])
        if retried
        else None,
    )
    logger.exception("git event %s failed (%s)", pk, "to be retried" if retried else "not retried")


def caller(provider: str, actor: str) -> str:
    return clean_text(f"{provider}:{actor}")[:CALLER_MAX]


# --- pull requests -------------------------------------------------------------------------


def named_tasks(fact: payloads.PullRequestEvent) -> list[str]:
    """The work items the PR names (`DEMO-42`) in the projects the board knows."""
    return payloads.references(fact.text, work_items.project_identifiers())


def start_named_tasks(fact: payloads.PullRequestEvent, repo: GitRepo) -> None:
    """A work item the PR names that has no task yet starts one, as To Analyse does: the
    title from Plane, the repo from the link. Raises `Unreadable` to be retried."""
    named = named_tasks(fact)
    known = set(Task.objects.filter(identifier__in=named).values_list("identifier", flat=True))
    for readable in named:
        if readable in known:
            continue
        item = work_items.find_work_item(readable)
        if item is None:
            continue  # Plane has no such work item: the PR's text only looked like one
        task, created = engine.create_task(
            work_item_id=item.id,
            project_id=item.project_id,
            title=clean_text(item.name)[:TITLE_MAX],
            repo=repo.repo,
            identifier=readable,
        )
        if not created and not task.identifier:
            Task.objects.filter(pk=task.pk, identifier="").update(identifier=readable)


def apply_pull_request(fact: payloads.PullRequestEvent, repo: GitRepo, provider: str):
    if fact.default_branch and fact.default_branch != repo.default_branch:
        GitRepo.objects.filter(pk=repo.pk).update(default_branch=fact.default_branch[:255])
        repo.default_branch = fact.default_branch
    pr = PullRequest.objects.select_for_update().filter(git_repo=repo, number=fact.number).first()
    label = f"{'MR !' if provider == 'gitlab' else 'PR #'}{fact.number}"
    if pr is not None and fact.event_at < pr.event_at:
        return Outcome.STALE, f"{label}: older than the event applied last (stale)", []
    pr = record_pull_request(pr, fact, repo)
    for task in Task.objects.filter(identifier__in=named_tasks(fact)):
        # A PR without an address is still the task's; it has nothing to show on Plane.
        due = timezone.now() if pr.url else None
        link, created = PullRequestLink.objects.get_or_create(
            pull_request=pr, task=task, defaults={"next_attempt_at": due}
        )
        if created and due:
            transaction.on_commit(links.request_links, robust=True)
    tasks = list(pr.tasks.order_by("id"))
    if not tasks:
        return Outcome.IGNORED, f"{label} names no work item with a task", []
    result = Result()
    for task in tasks:
        move_task(task, pr, caller(provider, fact.actor), result)
    return result.outcome(), "; ".join(result.lines), result.tasks


def record_pull_request(pr, fact: payloads.PullRequestEvent, repo: GitRepo) -> PullRequest:
    fields = {
        "url": fact.url or (pr.url if pr else ""),
        "title": clean_text(fact.title)[:500],
        "state": fact.state,
        "head_branch": clean_text(fact.head_branch)[:255],
        "base_branch": clean_text(fact.base_branch)[:255],
        "merge_commit_sha": clean_text(fact.merge_commit_sha),
        "merged_at": fact.merged_at,
        "opened_at": fact.opened_at or (pr.opened_at if pr else None),
        "event_at": fact.event_at,
    }
    if fact.review is not None:
        fields["changes_requested"] = fact.review == "changes_requested"
    if pr is None:
        return PullRequest.objects.create(git_repo=repo, number=fact.number, **fields)
    for name, value in fields.items():
        setattr(pr, name, value)
    pr.save()
    return pr


def pull_request_facts(task: Task, repo: GitRepo) -> list[rules.PullRequestFacts]:
    return [
        rules.PullRequestFacts(
            state=pr.state,
            changes_requested=pr.changes_requested,
            into_default_branch=not repo.default_branch or pr.base_branch == repo.default_branch,
        )
        for pr in task.pull_requests.filter(git_repo=repo)
    ]


def move_task(task: Task, pr: PullRequest, who: str, result: Result) -> None:
    """Walk the task to the stage its pull requests call for, one allowed step at a time."""
    task.refresh_from_db()
    name = task.identifier or str(task.work_item_id)
    called = rules.called_stage(pull_request_facts(task, pr.git_repo))
    if called is None or called == task.stage:
        result.said(f"{name} stays in {task.stage}", task, applied=True)  # the PR is recorded
        return
    if not rules.movable(task.stage, task.deploy_phase):
        shown = f"{task.stage}, {task.deploy_phase}" if task.deploy_phase else task.stage
        result.said(f"{name} is in {shown}: pull requests no longer move it", task)
        return
    steps = rules.walk(Stage(task.stage), called)
    try:
        for step in steps:
            engine.advance_stage(task, step, caller=who, reason=pr.url)
        if called == Stage.DEPLOY and task.deploy_phase == DeployPhase.NONE:
            engine.request_deploy_approval(task, caller=who, reason=pr.url)
    except engine.TransitionRefused as refused:
        result.said(f"{name}: {refused.reason}", task, refused=True)
        return
    result.said(f"{name} -> {task.stage}", task, applied=True)


# --- deploys -------------------------------------------------------------------------------


def covered_tasks(fact: payloads.DeployEvent, repo: GitRepo) -> list[Task]:
    """The repo's tasks waiting in deploy whose merged PR is the deployed commit, or was
    merged before the deployment was made."""
    merged = PullRequest.objects.filter(git_repo=repo, state=PullRequest.State.MERGED).filter(
        Q(merge_commit_sha__iexact=fact.sha) | Q(merged_at__lte=fact.created_at)
    )
    return list(
        Task.objects.filter(stage=Stage.DEPLOY, pull_requests__in=merged).distinct().order_by("id")
    )


def deploy_details(fact: payloads.DeployEvent, environment: str, task: Task) -> dict:
    """What the deploy API's `start` records, from the event; the lead time starts at the
    first commit of the change when the host told us, else at the PR's creation."""
    first = task.pull_requests.exclude(opened_at=None).order_by("opened_at").first()
    sha = fact.sha.lower()
    return {
        "environment": clean_text(environment)[:50],
        "commit_sha": sha
        if 7 <= len(sha) <= 40 and all(c in "0123456789abcdef" for c in sha)
        else "",
        "ref": clean_text(fact.ref)[:255],
        "ci_url": fact.url,
        "committed_at": first.opened_at if first else None,
    }


def apply_deploy(fact: payloads.DeployEvent, repo: GitRepo, provider: str):
    if fact.workflow and repo.deploy_workflow not in fact.workflow:
        why = f"workflow {fact.workflow[0]!r} is not {repo.repo}'s deploy workflow"
        return Outcome.IGNORED, why, []
    environment = fact.environment or repo.production_environment
    production = environment.lower() == repo.production_environment.lower()
    tasks = covered_tasks(fact, repo)
    sha = fact.sha[:12]
    if not tasks:
        why = f"no task of {repo.repo} waits in deploy for {sha}"
        return Outcome.IGNORED, why, []
    who = caller(provider, fact.actor)
    result = Result()
    for task in tasks:
        details = deploy_details(fact, environment, task)
        name = task.identifier or str(task.work_item_id)
        if not production:
            deployments.record_elsewhere(task, status=fact.status, caller=who, details=details)
            result.said(f"{name}: {fact.status} in {environment} (recorded)", task, applied=True)
            continue
        try:
            deploy_production(task, fact, who, details)
        except engine.TransitionRefused as refused:
            result.said(
                f"{name}: deploy {fact.status} refused: {refused.reason}", task, refused=True
            )
            continue
        result.said(f"{name}: deploy {fact.status} ({task.stage})", task, applied=True)
    return result.outcome(), "; ".join(result.lines), result.tasks


def deploy_production(task: Task, fact: payloads.DeployEvent, who: str, details: dict) -> None:
    """Through the same engine calls as the deploy API: a result that arrives without a
    start (GitHub may send success alone) starts the deploy first, behind the same gate."""
    reason = fact.url or f"deploy of {fact.sha[:12]}"
    if task.deploy_phase != DeployPhase.DEPLOYING:
        engine.start_deploy(task, caller=who, reason=reason, details=details)
    if fact.status != "started":
        engine.finish_deploy(task, succeeded=fact.status == "succeeded", caller=who, reason=reason)
