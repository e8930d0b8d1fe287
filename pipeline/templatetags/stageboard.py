"""Template filters for people: how long ago, in words that read right under a minute."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None) -> str:
    """`just now` under a minute (Django's timesince says `0 minutes`), else `5 minutes ago`."""
    if not value:
        return "-"
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
