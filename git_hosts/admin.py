from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from git_hosts.ingest import request_drain
from git_hosts.models import GitEvent, GitRepo, PullRequest, PullRequestLink
from pipeline.admin import (
    COMMIT_URL_FINDERS,
    DeploymentAdmin,
    RecordAdmin,
    RecordInline,
    TaskAdmin,
    body_html,
)

# Where each host shows a commit, under its web address and the repository's path.
COMMIT_PATHS = {"github": "commit", "gitlab": "-/commit", "forgejo": "commit"}


def web_url(provider: str) -> str:
    """The host's web address (GITHUB_WEB_URL, GITLAB_WEB_URL, FORGEJO_WEB_URL); empty when
    unknown."""
    return getattr(settings, f"{provider.upper()}_WEB_URL", "").rstrip("/")


def commit_url(provider: str, path: str, sha: str) -> str | None:
    """`https://github.com/acme/shop/commit/SHA`, `.../-/commit/SHA` on GitLab; None where the
    host's address is not known."""
    base = web_url(provider) if provider in COMMIT_PATHS else ""
    if not (base and path and sha):
        return None
    return f"{base}/{path}/{COMMIT_PATHS[provider]}/{sha}"


def deployment_commit_url(deployment) -> str | None:
    """A deployment's commit on its repo's Git host (read from the list's annotations, else
    from the linked repository)."""
    if hasattr(deployment, "git_provider"):
        provider, path = deployment.git_provider, deployment.git_path
    else:
        linked = GitRepo.objects.filter(repo=deployment.repo).first()
        provider, path = (linked.provider, linked.path) if linked else ("", "")
    return commit_url(provider or "", path or "", deployment.commit_sha)


_linked = GitRepo.objects.filter(repo=OuterRef("repo"))
DeploymentAdmin.list_annotations = {
    **DeploymentAdmin.list_annotations,
    "git_provider": Subquery(_linked.values("provider")[:1]),
    "git_path": Subquery(_linked.values("path")[:1]),
}
COMMIT_URL_FINDERS.append(deployment_commit_url)


@admin.register(GitRepo)
class GitRepoAdmin(admin.ModelAdmin):
    """Which Git repository each Stageboard repo is (also `manage.py repo set --git`)."""

    list_display = (
        "repo",
        "provider",
        "path",
        "production_environment",
        "deploy_workflow",
        "default_branch",
    )
    list_filter = ("provider",)
    search_fields = ("repo", "path")
    readonly_fields = ("default_branch", "updated_at")


@admin.register(GitEvent)
class GitEventAdmin(admin.ModelAdmin):
    # Few columns, so the list fits beside the app list and the filters.
    list_display = ("received_at", "provider", "what", "repo_path", "outcome", "short_detail")
    list_filter = ("outcome", "provider", "event", "received_at")
    date_hierarchy = "received_at"
    search_fields = ("=delivery_id", "repo_path", "detail")
    fields = (
        "received_at",
        "provider",
        "event",
        "action",
        "delivery_id",
        "repo_path",
        "outcome",
        "detail",
        "task_links",
        "attempts",
        "processed_at",
        "payload",
    )
    readonly_fields = fields
    actions = ["process_again"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # events are a record; the action below is the one way to act

    @admin.display(description="event", ordering="event")
    def what(self, event):
        return f"{event.event} {event.action}".strip()

    @admin.display(description="detail")
    def short_detail(self, event):
        return event.detail[:160] or "-"

    @admin.display(description="tasks")
    def task_links(self, event):
        tasks = event.tasks.all()
        if not tasks:
            return "-"
        return format_html_join(
            ", ",
            '<a href="{}">{}</a>',
            (
                (reverse("admin:pipeline_task_change", args=[t.pk]), t.identifier or t.title)
                for t in tasks
            ),
        )

    @admin.display(description="Payload")
    def payload(self, event):
        return body_html(bytes(event.body))

    def has_reprocess_permission(self, request):
        return request.user.has_perm("git_hosts.change_gitevent")

    @admin.action(description="Process the selected events again", permissions=["reprocess"])
    def process_again(self, request, queryset):
        count = queryset.update(
            outcome=GitEvent.Outcome.PENDING, detail="queued again by an operator", retry_at=None
        )
        if count:
            transaction.on_commit(request_drain)
        self.message_user(request, f"{count} event(s) queued again.", messages.SUCCESS)


@admin.register(PullRequest)
class PullRequestAdmin(RecordAdmin):
    list_display = ("__str__", "title", "state", "link", "merge_commit_sha", "event_at")
    list_filter = ("state", "git_repo")
    search_fields = ("title", "head_branch", "merge_commit_sha")

    @admin.display(description="address")
    def link(self, pr):
        return format_html('<a href="{}">{}</a>', pr.url, pr.url) if pr.url else "-"


class PullRequestLinkInline(RecordInline):
    """A task's pull requests, with a link to each and whether Plane shows it."""

    model = PullRequestLink
    verbose_name = "pull request"
    verbose_name_plural = "pull requests"
    fields = ("pull_request_link", "state", "linked_at", "last_error")

    @admin.display(description="pull request")
    def pull_request_link(self, link):
        pr = link.pull_request
        return format_html('<a href="{}">{}</a>', pr.url, pr.label) if pr.url else pr.label

    @admin.display(description="state")
    def state(self, link):
        return link.pull_request.state


TaskAdmin.inlines = [*TaskAdmin.inlines, PullRequestLinkInline]
