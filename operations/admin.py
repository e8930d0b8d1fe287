from django.contrib import admin

from operations.models import Notification
from pipeline.admin import RecordAdmin


@admin.register(Notification)
class NotificationAdmin(RecordAdmin):
    list_display = ("created_at", "kind", "subject", "occurrences", "state", "sent_at")
    list_filter = ("state", "kind")
    search_fields = ("subject", "body")
    readonly_fields = (
        "kind",
        "group_key",
        "once_key",
        "subject",
        "body",
        "occurrences",
        "state",
        "created_at",
        "last_at",
        "send_after",
        "attempts",
        "sent_at",
        "last_error",
    )
