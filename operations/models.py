from django.db import models


class Notification(models.Model):
    """Something that needs a person, sent through apprise (operations.notify).

    Occurrences of one group (kind, by default) while a notification waits are folded
    into it, so ten failures in a row are one message saying ten.
    """

    class State(models.TextChoices):
        PENDING = "pending"
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        SKIPPED = "skipped"

    kind = models.CharField(max_length=50, db_index=True)
    group_key = models.CharField(max_length=200, db_index=True)
    # Set for what must be told only once (one approval wait, one failing board row).
    once_key = models.CharField(max_length=200, null=True, blank=True, unique=True)
    subject = models.CharField(max_length=300)
    body = models.TextField(blank=True)
    occurrences = models.PositiveIntegerField(default=1)
    state = models.CharField(
        max_length=10, choices=State.choices, default=State.PENDING, db_index=True
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    last_at = models.DateTimeField()
    # Not before: a group that was just told waits out its grouping window.
    send_after = models.DateTimeField(db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        many = f" (x{self.occurrences})" if self.occurrences > 1 else ""
        return f"{self.subject}{many}"
