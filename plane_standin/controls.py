"""The stand-in's controls: what a test turns and reads besides Plane's data.

- Fault injection: `fail_next`, `fail_for`, `delay_for`, `hang_next`, and Plane's per-key rate
  limit (`set_rate_limit`). The API (`plane_standin.api`) asks `_throttle` and
  `_injected_failure` before it answers.
- The request log: every API request as it arrived, with the status it was answered
  (`requests`, `requests_since`, `calls`, `reset_log`).
- Webhook sending: registered webhooks get Plane's signed deliveries for every change, sent in
  order by one thread (`_queue_webhooks`, `flush_webhooks`, `webhook_log`); `send_webhook`
  sends one delivery by hand.

Standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from dataclasses import dataclass, replace
from typing import Any

# Plane waits 30 s; a stand-in in a test suite should give up sooner on a dead receiver.
WEBHOOK_TIMEOUT = 10.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    status: int  # 0 while the request is still being handled
    at: float  # time.monotonic() when the request arrived


class Controls:
    """Faults, the request log and webhook sending. Methods are thread-safe.

    A part of `PlaneStandIn`, which shares one lock between its parts; `send_webhook` takes
    the empty activity and the bot actor from the world (`World._activity`, `_bot_actor`).
    """

    _lock: threading.RLock

    def _init_controls(self, *, rate_limit: int, rate_window: float) -> None:
        self._log: list[RecordedRequest] = []
        self._rate_limit = rate_limit
        self._rate_window = rate_window
        self._hits: dict[str, deque[float]] = {}
        self._fail_remaining = 0
        self._fail_next_status = 500
        self._fail_until = 0.0
        self._fail_for_status = 500
        self._delay_until = 0.0
        self._delay = 0.0
        self._hang: tuple[str, str, float] | None = None

        self._webhooks: list[dict[str, str]] = []
        self._adhoc_webhook_id = str(uuid.uuid4())
        self._webhook_log: list[tuple[int | None, str, bytes]] = []
        self._outbox: queue.Queue[tuple[Any, ...] | None] = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        # Ignore proxy settings from the environment: receivers are usually on loopback.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    # --------------------------------------------------------------------------- observation

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [replace(r, query=dict(r.query), headers=dict(r.headers)) for r in self._log]

    def requests_since(self, start: int) -> list[RecordedRequest]:
        """The recorded requests from the `start`-th on (cheap to poll: no full copy)."""
        with self._lock:
            return [
                replace(r, query=dict(r.query), headers=dict(r.headers)) for r in self._log[start:]
            ]

    def calls(self, method: str | None = None, contains: str = "") -> list[RecordedRequest]:
        """Recorded requests with that method (any case) whose path contains `contains`."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method.upper()) and contains in r.path
        ]

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record_arrival(self, record: RecordedRequest) -> float:
        """Log an API request as it arrives; answers how late its answer must be (seconds)."""
        with self._lock:
            self._log.append(record)
            delay = self._delay if record.at < self._delay_until else 0.0
            if self._hang and self._hang[0] == record.method and self._hang[1] in record.path:
                delay, self._hang = self._hang[2], None
            return delay

    def _record_answer(self, record: RecordedRequest, status: int) -> None:
        with self._lock:
            record.status = status

    # ----------------------------------------------------------------------- fault injection

    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_remaining = count
            self._fail_next_status = status

    def fail_for(self, seconds: float, status: int = 500) -> None:
        with self._lock:
            self._fail_until = time.monotonic() + seconds
            self._fail_for_status = status

    def delay_for(self, seconds: float, delay: float) -> None:
        """Requests arriving in the next `seconds` are answered `delay` seconds late.

        The request is fully processed first (a PATCH is applied, its webhooks are sent) and
        only the answer is late: that is the timeout a client must survive, where it cannot
        know whether its change happened.
        """
        with self._lock:
            self._delay_until = time.monotonic() + seconds
            self._delay = delay

    def hang_next(self, method: str, contains: str, seconds: float) -> None:
        """The next `method` request whose path contains `contains` is applied and then
        answered `seconds` late, as in `delay_for`: the one request a client is caught in
        (killed or timed out while waiting), the others answered at once."""
        with self._lock:
            self._hang = (method.upper(), contains, seconds)

    def set_rate_limit(self, limit: int, window: float) -> None:
        """Change the limit (0 or less: unlimited) and start every key with an empty window."""
        with self._lock:
            self._rate_limit = limit
            self._rate_window = window
            self._hits.clear()

    def _injected_failure(self) -> int | None:
        """The status an injected failure answers this request with, if one applies."""
        with self._lock:
            if self._fail_remaining > 0:
                self._fail_remaining -= 1
                return self._fail_next_status
            if time.monotonic() < self._fail_until:
                return self._fail_for_status
            return None

    def _throttle(self, key: str) -> tuple[bool, dict[str, str]]:
        """DRF's SimpleRateThrottle (which Plane uses): a sliding log of allowed requests."""
        with self._lock:
            if self._rate_limit <= 0:
                return True, {}
            now = time.monotonic()
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self._rate_window:
                hits.popleft()
            if len(hits) >= self._rate_limit:
                wait = hits[0] + self._rate_window - now
                return False, {"Retry-After": str(max(1, math.ceil(wait)))}
            hits.append(now)
            reset_in = hits[0] + self._rate_window - now
            return True, {
                "X-RateLimit-Remaining": str(self._rate_limit - len(hits)),
                "X-RateLimit-Reset": str(math.ceil(time.time() + reset_in)),
            }

    # ------------------------------------------------------------------------------ webhooks

    def register_webhook(self, url: str, secret: str) -> str:
        webhook_id = str(uuid.uuid4())
        with self._lock:
            self._webhooks.append({"id": webhook_id, "url": url, "secret": secret})
        return webhook_id

    def unregister_webhook(self, webhook_id: str) -> None:
        """Send nothing more to that webhook (as deleting it in Plane's settings does)."""
        with self._lock:
            self._webhooks = [w for w in self._webhooks if w["id"] != webhook_id]

    def send_webhook(
        self,
        event: str,
        action: str,
        data: dict,
        activity: dict | None = None,
        *,
        url: str | None = None,
        secret: str | None = None,
    ) -> tuple[int, str, bytes]:
        """Send one delivery now; `activity` None means Plane's empty one (as for a creation).

        `url` and `secret` default to the last registered webhook's.
        """
        with self._lock:
            default = self._webhooks[-1] if self._webhooks else {}
        url = url if url is not None else default.get("url")
        secret = secret if secret is not None else default.get("secret")
        if url is None or secret is None:
            raise ValueError("no webhook registered: pass url and secret")
        webhook_id = default.get("id", self._adhoc_webhook_id)
        if activity is None:
            activity = self._activity(None, None, None, self._bot_actor())
        delivery, body, headers = self._build_delivery(
            webhook_id, secret, event, action, data, activity
        )
        return self._post(url, body, headers), delivery, body

    @property
    def webhook_log(self) -> list[tuple[int | None, str, bytes]]:
        with self._lock:
            return list(self._webhook_log)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every queued automatic delivery was attempted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _queue_webhooks(
        self, event: str, action: str, data: dict[str, Any], activities: list[dict[str, Any]]
    ) -> None:
        with self._lock:
            for webhook in self._webhooks:
                for activity in activities:
                    self._pending += 1
                    self._outbox.put((webhook, event, action, data, activity))

    def _stop_sending(self) -> None:
        self._outbox.put(None)

    def _send_loop(self) -> None:
        # One sender thread: deliveries leave in the order the changes happened, and a slow
        # receiver never holds up an API answer.
        while (job := self._outbox.get()) is not None:
            webhook, event, action, data, activity = job
            delivery, body, headers = self._build_delivery(
                webhook["id"], webhook["secret"], event, action, data, activity
            )
            status: int | None
            try:
                status = self._post(webhook["url"], body, headers)
            except Exception:
                status = None  # Plane would retry later; the stand-in just records the failure
            with self._idle:
                self._webhook_log.append((status, delivery, body))
                self._pending -= 1
                self._idle.notify_all()

    def _build_delivery(
        self,
        webhook_id: str,
        secret: str,
        event: str,
        action: str,
        data: dict[str, Any],
        activity: dict[str, Any],
    ) -> tuple[str, bytes, dict[str, str]]:
        payload = {
            "event": event,
            "action": action,
            "webhook_id": webhook_id,
            "workspace_id": data.get("workspace"),
            "data": data,
            "activity": activity,
        }
        # Plane signs exactly what it sends: plain json.dumps, default separators.
        body = json.dumps(payload).encode()
        delivery = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Autopilot",
            "X-Plane-Delivery": delivery,
            "X-Plane-Event": event,
            "X-Plane-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        }
        return delivery, body, headers

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=WEBHOOK_TIMEOUT) as answer:
                answer.read()
                return answer.status
        except urllib.error.HTTPError as error:
            # Any HTTP answer counts as delivered for Plane, 4xx and 5xx included.
            error.close()
            return error.code
