"""A client-side rate budget per Plane API key, shared by every process using the database.

Plane throttles each API key with a sliding window log (DRF's throttle): a request passes
when fewer than `limit` passed in the last `window` seconds. The budget keeps the same log
of our own requests, so we never send one that Plane would refuse, and it honours a
`Retry-After` that Plane sent anyway (another client on the same key, a lower limit).

The window is widened a little (a second for Plane's minute): Plane counts a request
when it arrives, we when we send it, and the two differ by the request's latency.
"""

import hashlib
import time

from django.db import IntegrityError, transaction

from plane_integration.models import PlaneRateBudget


def key_id(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


class RateBudget:
    def __init__(self, api_key: str, *, limit: int, window: float):
        if limit < 1 or window <= 0:
            raise ValueError("a rate budget needs limit >= 1 and window > 0")
        self.key_id = key_id(api_key)
        self.limit = limit
        self.window = window + min(1.0, window / 20)

    def acquire(self, reserve: int = 0) -> float:
        """Take a slot for one request now and return 0, or return the seconds to wait.

        `reserve` slots stay free for others: a low-priority caller (a comment) leaves
        them to the board sync, so a status change never waits for a comment.
        """
        usable = max(1, self.limit - reserve)
        with transaction.atomic():
            row = self._locked_row()
            now = time.time()
            if row.blocked_until > now:
                return row.blocked_until - now
            recent = [t for t in row.sent_at if t > now - self.window]
            if len(recent) >= usable:
                # The slot frees when the oldest request that fills the budget leaves the window.
                return recent[-usable] + self.window - now
            row.sent_at = [*recent, now]
            # Counted here, in the row every process already writes: /metrics reads it.
            row.requests_total += 1
            row.save(update_fields=["sent_at", "requests_total"])
            return 0.0

    def block(self, seconds: float) -> None:
        """Plane answered 429: send nothing with this key for `seconds`."""
        with transaction.atomic():
            row = self._locked_row()
            row.blocked_until = max(row.blocked_until, time.time() + seconds)
            row.rate_limited_total += 1
            row.save(update_fields=["blocked_until", "rate_limited_total"])

    def _locked_row(self) -> PlaneRateBudget:
        # The row lock makes concurrent acquires from every process queue here (PostgreSQL);
        # SQLite's IMMEDIATE transactions serialise them the same way.
        try:
            with transaction.atomic():
                return PlaneRateBudget.objects.select_for_update().get_or_create(
                    key_id=self.key_id
                )[0]
        except IntegrityError:  # another process created the row first
            return PlaneRateBudget.objects.select_for_update().get(key_id=self.key_id)
