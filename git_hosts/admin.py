from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from git_hosts.ingest import request_drain
from git_hosts.models import GitEvent, GitRepo, PullRequest, PullRequestLink
from pipeline.admin import RecordAdmin, RecordInline, TaskAdmin, body_html


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
    list_display = (
        "received_at",
        "provider",
        "event",
        "action",
        "repo_path",
        "outcome",
        "short_detail",
        "attempts",
    )
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
