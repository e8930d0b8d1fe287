"""What a Git host's delivery says, read into one of two facts. Pure: no Django.

GitHub, GitLab and Forgejo (or Gitea) send pull requests (merge requests) and deploys in
shapes of their own (`GIT.md`); each reader here turns one into a `PullRequestEvent` or a
`DeployEvent`, or raises `Ignored` with the reason. A body is authentic when it gets here
(its signature was checked at the edge), so a field of the wrong type is not an attack but
a shape we do not read: it is ignored with a reason, never a crash.
"""

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from pipeline.text import clean_text

# A work item's readable id as Plane shows it: the project's identifier (letters and
# digits, a letter first) and the sequence id. Not preceded or followed by a letter or
# digit, so `feat/demo-42-fix` and `DEMO-42:` name it and `xdemo-42` or `demo-421` do not.
REFERENCE = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9]{0,11})-([0-9]{1,9})(?![0-9])")


class Ignored(Exception):
    """The delivery is authentic but changes nothing; the message says why."""


@dataclass(frozen=True)
class PullRequestEvent:
    repo_path: str
    default_branch: str
    number: int
    url: str
    title: str
    description: str
    head_branch: str
    base_branch: str
    state: str  # open, draft, merged or closed
    merged_at: datetime | None
    merge_commit_sha: str
    opened_at: datetime | None
    event_at: datetime  # the host's time of the event: older ones change nothing
    actor: str
    # A review asked for changes ("changes_requested"), or the PR was updated, re-requested
    # or approved since ("cleared"); None: the event says nothing about reviews.
    review: str | None = None

    @property
    def text(self) -> str:
        """Where a work item is named: the branch, the title and the description."""
        return "\n".join((self.head_branch, self.title, self.description))


@dataclass(frozen=True)
class DeployEvent:
    repo_path: str
    status: str  # started, succeeded or failed
    environment: str | None  # None: the repository's production environment
    sha: str
    ref: str
    url: str
    created_at: datetime  # when the deployment was made: PRs merged before it are in it
    event_at: datetime
    actor: str
    # The GitHub Actions workflow that deployed, by each name it goes by (its name, its
    # file's path and file name); empty for a deployment event.
    workflow: tuple[str, ...] = ()


def references(text: str, identifiers: set[str]) -> list[str]:
    """The work items (`DEMO-42`, upper case) that `text` names, in the order named, among
    the projects whose identifiers are known (upper case)."""
    found = []
    for project, number in REFERENCE.findall(text):
        key = f"{project.upper()}-{int(number)}"
        if project.upper() in identifiers and key not in found:
            found.append(key)
    return found


# --- small typed readers: a wrong type is a reason to ignore, never an exception ----------


def _obj(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise Ignored(f"{where} is not an object")
    return value


def _text(value: Any, where: str, *, required: bool = True) -> str:
    """Text as a column holds it (what none can hold replaced: a query with a NUL in it
    is an error on PostgreSQL, not a row that is not found)."""
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise Ignored(f"{where} is missing or not text")
    return clean_text(value)


def _opt_text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        raise Ignored(f"{where} is missing or not a number")
    return value


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 (`2026-12-04T10:00:00Z`, with an offset or fractions) or GitLab's older
    `2026-12-04 10:00:00 UTC` / `2026-12-04 10:00:00 +0100`; None when it is neither."""
    if not isinstance(value, str) or not value or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    elif text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S %z")
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _time(value: Any, where: str) -> datetime:
    parsed = parse_time(value)
    if parsed is None:
        raise Ignored(f"{where} is missing or not a time")
    return parsed


def _url(value: Any) -> str:
    text = _opt_text(value)
    return text if text.startswith(("https://", "http://")) and len(text) <= 500 else ""


# --- GitHub --------------------------------------------------------------------------------

GITHUB_PR_ACTIONS = {
    "opened",
    "reopened",
    "ready_for_review",
    "converted_to_draft",
    "synchronize",
    "edited",
    "closed",
    "review_requested",
}
DEPLOY_STATES = {"in_progress": "started", "success": "succeeded", "failure": "failed"}


def github(event: str, payload: dict) -> PullRequestEvent | DeployEvent:
    if event == "pull_request":
        return _github_pull_request(payload)
    if event == "pull_request_review":
        return _github_review(payload)
    if event == "deployment_status":
        return _github_deployment_status(payload)
    if event == "workflow_run":
        return _github_workflow_run(payload)
    raise Ignored(f"GitHub {event or 'unnamed'} events move no task")


def _repository(payload: dict) -> tuple[str, str]:
    repository = _obj(payload.get("repository"), "repository")
    return (
        _text(repository.get("full_name"), "repository.full_name"),
        _opt_text(repository.get("default_branch")),
    )


def _github_pr(payload: dict, *, event_at: datetime | None = None, review=None):
    path, default_branch = _repository(payload)
    pr = _obj(payload.get("pull_request"), "pull_request")
    head = _obj(pr.get("head"), "pull_request.head")
    base = _obj(pr.get("base"), "pull_request.base")
    merged = pr.get("merged") is True or bool(pr.get("merged_at"))
    if pr.get("state") == "open":
        state = "draft" if pr.get("draft") is True else "open"
    elif pr.get("state") == "closed":
        state = "merged" if merged else "closed"
    else:
        raise Ignored("pull_request.state is neither open nor closed")
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    return PullRequestEvent(
        repo_path=path,
        default_branch=default_branch,
        number=_number(pr.get("number"), "pull_request.number"),
        url=_url(pr.get("html_url")) or _url(pr.get("url")),
        title=_opt_text(pr.get("title")),
        description=_opt_text(pr.get("body")),
        head_branch=_text(head.get("ref"), "pull_request.head.ref"),
        base_branch=_opt_text(base.get("ref")),
        state=state,
        merged_at=parse_time(pr.get("merged_at")),
        merge_commit_sha=_opt_text(pr.get("merge_commit_sha"))[:64] if merged else "",
        opened_at=parse_time(pr.get("created_at")),
        event_at=event_at or _time(pr.get("updated_at"), "pull_request.updated_at"),
        actor=_opt_text(sender.get("login")) or "unknown",
        review=review,
    )


def _github_pull_request(payload: dict) -> PullRequestEvent:
    action = _opt_text(payload.get("action"))
    if action not in GITHUB_PR_ACTIONS:
        raise Ignored(f"pull_request.{action or '(no action)'} changes no stage")
    # New commits or a re-requested review end a request for changes.
    review = "cleared" if action in ("synchronize", "review_requested") else None
    return _github_pr(payload, review=review)


REVIEW_STATES = {"changes_requested": "changes_requested", "approved": "cleared"}


def _github_review(payload: dict) -> PullRequestEvent:
    action = _opt_text(payload.get("action"))
    review = _obj(payload.get("review"), "review")
    state = _opt_text(review.get("state")).lower()
    if action == "dismissed":
        verdict = "cleared"
    elif action == "submitted" and state in REVIEW_STATES:
        verdict = REVIEW_STATES[state]
    else:
        raise Ignored(f"pull_request_review.{action or '(no action)'} ({state}) changes no stage")
    at = parse_time(review.get("submitted_at"))
    return _github_pr(payload, event_at=at, review=verdict)


def _github_deployment_status(payload: dict) -> DeployEvent:
    path, _ = _repository(payload)
    status = _obj(payload.get("deployment_status"), "deployment_status")
    deployment = _obj(payload.get("deployment"), "deployment")
    state = _opt_text(status.get("state"))
    if state == "error":
        state = "failure"
    if state not in DEPLOY_STATES:
        raise Ignored(f"deployment_status {state or '(no state)'} moves no deploy")
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    event_at = _time(status.get("created_at"), "deployment_status.created_at")
    return DeployEvent(
        repo_path=path,
        status=DEPLOY_STATES[state],
        environment=_opt_text(status.get("environment"))
        or _text(deployment.get("environment"), "deployment.environment"),
        sha=_text(deployment.get("sha"), "deployment.sha"),
        ref=_opt_text(deployment.get("ref")),
        url=_url(status.get("target_url")) or _url(status.get("log_url")),
        created_at=parse_time(deployment.get("created_at")) or event_at,
        event_at=event_at,
        actor=_opt_text(sender.get("login")) or "unknown",
    )


def _github_workflow_run(payload: dict) -> DeployEvent:
    path, default_branch = _repository(payload)
    run = _obj(payload.get("workflow_run"), "workflow_run")
    if payload.get("action") != "completed":
        raise Ignored("a workflow run counts when it completes")
    conclusion = _opt_text(run.get("conclusion"))
    if conclusion not in ("success", "failure"):
        raise Ignored(f"a workflow run that ended {conclusion or 'without a conclusion'}")
    branch = _opt_text(run.get("head_branch"))
    if default_branch and branch != default_branch:
        raise Ignored(f"the run was on {branch or 'no branch'}, not on {default_branch}")
    sender = payload.get("sender") if isinstance(payload.get("sender"), dict) else {}
    started = parse_time(run.get("run_started_at")) or parse_time(run.get("created_at"))
    event_at = _time(run.get("updated_at"), "workflow_run.updated_at")
    return DeployEvent(
        repo_path=path,
        status="succeeded" if conclusion == "success" else "failed",
        environment=None,
        sha=_text(run.get("head_sha"), "workflow_run.head_sha"),
        ref=branch,
        url=_url(run.get("html_url")),
        created_at=started or event_at,
        event_at=event_at,
        actor=_opt_text(sender.get("login")) or "unknown",
        workflow=_workflow_names(payload, run),
    )


def _workflow_names(payload: dict, run: dict) -> tuple[str, ...]:
    workflow = payload.get("workflow") if isinstance(payload.get("workflow"), dict) else {}
    path = _opt_text(run.get("path")) or _opt_text(workflow.get("path"))
    names = (_opt_text(workflow.get("name")), _opt_text(run.get("name")), path)
    found = tuple(dict.fromkeys(n for n in (*names, path.rsplit("/", 1)[-1]) if n))
    if not found:
        raise Ignored("the workflow run has no name")
    return found


# --- GitLab --------------------------------------------------------------------------------

GITLAB_MR_ACTIONS = {"open", "reopen", "update", "close", "merge"}
GITLAB_DEPLOY_STATES = {"running": "started", "success": "succeeded", "failed": "failed"}


def gitlab(event: str, payload: dict) -> PullRequestEvent | DeployEvent:
    kind = payload.get("object_kind")
    if kind == "merge_request":
        return _gitlab_merge_request(payload)
    if kind == "deployment":
        return _gitlab_deployment(payload)
    raise Ignored(f"GitLab {event or kind or 'unnamed'} events move no task")


def _gitlab_merge_request(payload: dict) -> PullRequestEvent:
    project = _obj(payload.get("project"), "project")
    mr = _obj(payload.get("object_attributes"), "object_attributes")
    action = _opt_text(mr.get("action"))
    if action not in GITLAB_MR_ACTIONS:
        raise Ignored(f"merge request action {action or '(none)'} changes no stage")
    draft = mr.get("draft") is True or mr.get("work_in_progress") is True
    states = {"opened": "draft" if draft else "open", "merged": "merged", "closed": "closed"}
    state = states.get(_opt_text(mr.get("state")))
    if state is None:
        raise Ignored(f"merge request state {mr.get('state')!r} changes no stage")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    event_at = _time(mr.get("updated_at"), "object_attributes.updated_at")
    return PullRequestEvent(
        repo_path=_text(project.get("path_with_namespace"), "project.path_with_namespace"),
        default_branch=_opt_text(project.get("default_branch")),
        number=_number(mr.get("iid"), "object_attributes.iid"),
        url=_url(mr.get("url")),
        title=_opt_text(mr.get("title")),
        description=_opt_text(mr.get("description")),
        head_branch=_text(mr.get("source_branch"), "object_attributes.source_branch"),
        base_branch=_opt_text(mr.get("target_branch")),
        state=state,
        merged_at=(parse_time(mr.get("merged_at")) or event_at) if state == "merged" else None,
        merge_commit_sha=_opt_text(mr.get("merge_commit_sha"))[:64] if state == "merged" else "",
        opened_at=parse_time(mr.get("created_at")),
        event_at=event_at,
        actor=_opt_text(user.get("username")) or "unknown",
        # New commits (`oldrev`) end a request for changes, as on GitHub.
        review="cleared" if action == "update" and mr.get("oldrev") else None,
    )


def _gitlab_deployment(payload: dict) -> DeployEvent:
    project = _obj(payload.get("project"), "project")
    status = _opt_text(payload.get("status"))
    if status not in GITLAB_DEPLOY_STATES:
        raise Ignored(f"deployment {status or '(no status)'} moves no deploy")
    user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
    event_at = _time(payload.get("status_changed_at"), "status_changed_at")
    return DeployEvent(
        repo_path=_text(project.get("path_with_namespace"), "project.path_with_namespace"),
        status=GITLAB_DEPLOY_STATES[status],
        environment=_text(payload.get("environment"), "environment"),
        sha=_gitlab_sha(payload),
        ref=_opt_text(payload.get("ref")),
        url=_url(payload.get("deployable_url")),
        created_at=event_at,
        event_at=event_at,
        actor=_opt_text(user.get("username")) or "unknown",
    )


def _gitlab_sha(payload: dict) -> str:
    """The deployed commit: `sha` where sent, else the end of `commit_url` (GitLab's
    documented deployment event has only these and `short_sha`)."""
    sha = _opt_text(payload.get("sha"))
    if not sha:
        sha = _opt_text(payload.get("commit_url")).rstrip("/").rsplit("/", 1)[-1]
    return sha or _text(payload.get("short_sha"), "sha")


# --- Forgejo and Gitea -----------------------------------------------------------------

FORGEJO_PR_ACTIONS = {
    "opened",
    "reopened",
    "closed",
    "synchronized",
    "edited",
    "review_requested",
}
FORGEJO_REVIEWS = {
    "pull_request_review_rejected": "changes_requested",
    "pull_request_review_approved": "cleared",
}


def forgejo(event: str, payload: dict) -> PullRequestEvent:
    if event in FORGEJO_REVIEWS:
        return _forgejo_pr(payload, review=FORGEJO_REVIEWS[event])
    if event != "pull_request":
        raise Ignored(f"Forgejo {event or 'unnamed'} events move no task")
    action = _opt_text(payload.get("action"))
    if action not in FORGEJO_PR_ACTIONS:
        raise Ignored(f"pull_request.{action or '(no action)'} changes no stage")
    cleared = action in ("synchronized", "review_requested")
    return _forgejo_pr(payload, review="cleared" if cleared else None)


def _forgejo_pr(payload: dict, *, review: str | None) -> PullRequestEvent:
    # Close to GitHub's shape; Gitea marks a draft by a title prefix on older versions.
    event = _github_pr(payload, review=review)
    pr = payload["pull_request"]
    if event.state == "open" and pr.get("draft") is not True:
        title = event.title.lower()
        if title.startswith(("wip:", "[wip]", "draft:", "[draft]")):
            return replace(event, state="draft")
    return event


READERS = {"github": github, "gitlab": gitlab, "forgejo": forgejo}


def read(provider: str, event: str, payload: Any) -> PullRequestEvent | DeployEvent:
    """The fact a stored delivery states, or `Ignored` with the reason."""
    if not isinstance(payload, dict):
        raise Ignored("the body is not a JSON object")
    return READERS[provider](event, payload)
