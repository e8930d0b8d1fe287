"""The one Plane API client: `requests` with timeouts, retries, the rate budget, typed results.

Nothing here raises a `requests` exception to its callers: every call returns a
`PlaneResult`. Retries are our own short loop rather than urllib3's `Retry`, because
every attempt must take a slot from the shared rate budget, and a `Retry-After` must be
recorded for all processes rather than slept through inside one request.
"""

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from django.conf import settings
from django.core.cache import cache

from plane_integration.budget import RateBudget

logger = logging.getLogger(__name__)

PATH_FORMS = ("work-items", "issues")
_per_thread = threading.local()
PAGE_SIZE = 100  # Plane's maximum per_page
# The monotonic time by which every Plane call in this context must be over (time_limit).
_time_limit: ContextVar[float | None] = ContextVar("plane_time_limit", default=None)
# Below this many seconds left, a request is not started: it could not get an answer.
MIN_SECONDS_LEFT = 0.2


def _items_path_under(workspace: str, project_id: str, form: str) -> str:
    return f"/workspaces/{workspace}/projects/{project_id}/{form}/"


@contextmanager
def time_limit(at: float | None) -> Iterator[None]:
    """Bound every Plane call made inside by the monotonic time `at` (None: no bound).

    A q task that outlives its timeout is killed mid-send, so a run with a deadline passes
    it down: each attempt's connect and read timeouts together fit in the time left, and
    no attempt or retry starts without time for an answer. A call refused for lack of
    time says so and carries `retry_after=0`: nothing failed, the work waits for a run.
    """
    token = _time_limit.set(at)
    try:
        yield
    finally:
        _time_limit.reset(token)


@dataclass(frozen=True)
class PlaneResult:
    ok: bool
    status: int | None = None  # None: no HTTP answer (not sent, connection error, timeout)
    data: Any = None
    error: str = ""
    retry_after: float | None = None  # set when rate-limited, by Plane or by our budget

    @property
    def rate_limited(self) -> bool:
        return self.retry_after is not None


def _never_connected(exc: requests.ConnectionError) -> bool:
    """Whether the connection failed before any of the request was sent."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(exc, requests.ConnectTimeout) or isinstance(
        reason, urllib3.exceptions.NewConnectionError
    )


def _message(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason
    if isinstance(body, dict):
        for field in ("error", "detail", "error_message", "message"):
            if body.get(field):
                return str(body[field])
    return str(body)[:200]


class PlaneClient:
    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        path_form: str = "auto",
        rate_limit: int = 60,
        rate_window: float = 60.0,
        connect_timeout: float = 3.05,
        read_timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.5,
        reserve: int = 0,
    ):
        if path_form not in ("auto", *PATH_FORMS):
            raise ValueError(f"path_form must be auto, work-items or issues, not {path_form!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.path_form = path_form
        self.budget = RateBudget(api_key, limit=rate_limit, window=rate_window)
        # Slots of the budget this client leaves to others (the reconciler leaves the sync
        # half of every window, so a sweep never delays a status change).
        self.reserve = reserve
        self.sent = 0  # requests this client sent (each retry is one), for callers' counts
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.page_size = PAGE_SIZE
        self.session = requests.Session()
        self.session.headers.update({"X-API-Key": api_key, "Accept": "application/json"})

    @classmethod
    def from_settings(cls, *, reserve: int = 0) -> "PlaneClient | None":
        """The client for the configured Plane, or None when Plane is not configured.

        One client per thread and configuration, so its session's connections are reused
        across calls; settings are read on every call, so a change takes effect at once.
        `reserve` is how many slots of each rate window this client leaves to others.
        """
        if not (settings.PLANE_API_URL and settings.PLANE_API_KEY):
            return None
        options = {
            "base_url": settings.PLANE_API_URL,
            "api_key": settings.PLANE_API_KEY,
            "path_form": settings.PLANE_API_PATHS,
            "rate_limit": settings.PLANE_RATE_LIMIT_PER_MINUTE,
            "rate_window": settings.PLANE_RATE_WINDOW_SECONDS,
            "connect_timeout": settings.PLANE_CONNECT_TIMEOUT,
            "read_timeout": settings.PLANE_READ_TIMEOUT,
            "retries": settings.PLANE_RETRIES,
            "backoff": settings.PLANE_RETRY_BACKOFF,
            "reserve": reserve,
        }
        key = tuple(options.values())
        clients = _per_thread.__dict__.setdefault("clients", {})
        if key not in clients:
            if len(clients) >= 4:  # the configuration changed: old clients are of no more use
                clients.clear()
            clients[key] = cls(**options)
        return clients[key]

    # --- calls ---------------------------------------------------------------------------

    def get_states(self, workspace: str, project_id: str) -> PlaneResult:
        return self._collect(f"/workspaces/{workspace}/projects/{project_id}/states/", {})

    def create_state(
        self, workspace: str, project_id: str, name: str, group: str, color: str
    ) -> PlaneResult:
        """Create a state. Plane answers 200 with it, or 409 with the `id` of the state of
        that name the project has already (the result then carries the body as `data`).
        A resend after a lost answer meets that 409, so it is safe to retry."""
        path = f"/workspaces/{workspace}/projects/{project_id}/states/"
        return self._request("POST", path, json={"name": name, "group": group, "color": color})

    def get_work_item(self, workspace: str, project_id: str, work_item_id: str) -> PlaneResult:
        return self._request("GET", self._item_path(workspace, project_id, work_item_id))

    def set_state(
        self, workspace: str, project_id: str, work_item_id: str, state_id: str
    ) -> PlaneResult:
        # Setting a state is idempotent, so a 5xx or a read timeout may be retried.
        path = self._item_path(workspace, project_id, work_item_id)
        return self._request("PATCH", path, json={"state": str(state_id)})

    def list_work_items(
        self, workspace: str, project_id: str, fields: tuple[str, ...] = ("id", "state")
    ) -> PlaneResult:
        path = self._items_path(workspace, project_id)
        return self._collect(path, {"fields": ",".join(fields)})

    def work_items_page(
        self,
        workspace: str,
        project_id: str,
        *,
        fields: tuple[str, ...],
        order_by: str,
        cursor: str | None = None,
    ) -> PlaneResult:
        """One page of the work items list: `data` is Plane's page object (`results`,
        `next_cursor`, `next_page_results`), for callers that stop or resume mid-list.

        With the path form not yet known, the page itself finds it out (no probe first):
        read under each form in turn until one is not Plane's 404, and remember it."""
        params = {"fields": ",".join(fields), "order_by": order_by}
        known = self.path_form if self.path_form != "auto" else self._known_path_form()
        if known:
            return self._page(_items_path_under(workspace, project_id, known), params, cursor)
        first = None
        for form in PATH_FORMS:
            page = self._page(_items_path_under(workspace, project_id, form), params, cursor)
            if page.ok:
                self._remember_path_form(form)
                return page
            if page.status != 404:
                return page  # cannot tell now (down, rate-limited): found out next time
            first = first or page
        return first  # 404 under every form: the project is gone, or the key may not see it

    def add_comment(
        self, workspace: str, project_id: str, work_item_id: str, html: str, *, reserve: int = 0
    ) -> PlaneResult:
        # Not idempotent: resent only when the first attempt never reached Plane.
        # `reserve`: budget slots left to the board sync (a comment has the lower priority).
        path = self._item_path(workspace, project_id, work_item_id) + "comments/"
        return self._request(
            "POST", path, json={"comment_html": html}, idempotent=False, reserve=reserve
        )

    def get_project(self, workspace: str, project_id: str) -> PlaneResult:
        return self._request("GET", f"/workspaces/{workspace}/projects/{project_id}/")

    def get_work_item_by_identifier(
        self, workspace: str, project_id: str, identifier: str
    ) -> PlaneResult:
        """A work item by its readable id (`DEMO-42`), as Plane's web app names it."""
        form = self._path_form(workspace, project_id)
        return self._request("GET", f"/workspaces/{workspace}/{form}/{identifier}/")

    def add_link(
        self,
        workspace: str,
        project_id: str,
        work_item_id: str,
        url: str,
        title: str,
        *,
        reserve: int = 0,
    ) -> PlaneResult:
        # Plane refuses the same URL twice on a work item, so a resend adds nothing twice.
        path = self._item_path(workspace, project_id, work_item_id) + "links/"
        return self._request("POST", path, json={"url": url, "title": title}, reserve=reserve)

    # --- paths ---------------------------------------------------------------------------

    def _items_path(self, workspace: str, project_id: str) -> str:
        return _items_path_under(workspace, project_id, self._path_form(workspace, project_id))

    def _item_path(self, workspace: str, project_id: str, work_item_id: str) -> str:
        return f"{self._items_path(workspace, project_id)}{work_item_id}/"

    def _path_form(self, workspace: str, project_id: str) -> str:
        """`work-items`, or `issues` on servers before v1.1.0: from settings, or found once."""
        if self.path_form != "auto":
            return self.path_form
        form = self._known_path_form()
        if form is None:
            form = self._detect_path_form(workspace, project_id)
            if form:
                self._remember_path_form(form)
        return form or PATH_FORMS[0]

    def _known_path_form(self) -> str | None:
        return cache.get(f"stageboard:plane-path-form:{self.base_url}")

    def _remember_path_form(self, form: str) -> None:
        logger.info("plane: this server routes work items under /%s/", form)
        cache.set(f"stageboard:plane-path-form:{self.base_url}", form, timeout=24 * 3600)

    def _detect_path_form(self, workspace: str, project_id: str) -> str | None:
        for form in PATH_FORMS:
            path = _items_path_under(workspace, project_id, form)
            result = self._request("GET", path, params={"per_page": 1, "fields": "id"})
            if result.ok:
                return form
            if result.status != 404:
                return None  # cannot tell now (down, rate-limited): ask again next time
        return None

    # --- transport -----------------------------------------------------------------------

    def _collect(self, path: str, params: dict) -> PlaneResult:
        """Follow Plane's cursor pagination (`next_cursor` while `next_page_results`)."""
        items: list = []
        for page in self._pages(path, params):
            if not page.ok:
                return page
            items.extend(page.data.get("results", []))
        return PlaneResult(ok=True, status=200, data=items)

    def _page(self, path: str, params: dict, cursor: str | None) -> PlaneResult:
        query = {**params, "per_page": self.page_size, **({"cursor": cursor} if cursor else {})}
        page = self._request("GET", path, params=query)
        if page.ok and not isinstance(page.data, dict):
            return PlaneResult(False, page.status, error="Plane sent a page that is not an object")
        return page

    def _pages(self, path: str, params: dict) -> Iterator[PlaneResult]:
        cursor = None
        while True:
            page = self._page(path, params, cursor)
            yield page
            if not page.ok or not page.data.get("next_page_results"):
                return
            cursor = page.data.get("next_cursor")
            if not cursor:
                return

    def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        idempotent: bool = True,
        reserve: int = 0,
    ) -> PlaneResult:
        url = f"{self.base_url}/api/v1{path}"
        result = PlaneResult(ok=False, error="not sent")
        for attempt in range(self.retries + 1):
            if attempt:
                pause = self.backoff * 2 ** (attempt - 1) * (1 + random.random())
                if self._seconds_left() < pause + MIN_SECONDS_LEFT:
                    return result  # no time for another attempt: the last outcome stands
                time.sleep(pause)
            timeout = self._timeout()
            if timeout is None:
                return PlaneResult(ok=False, error="not sent: the run's time is up", retry_after=0)
            wait = self.budget.acquire(max(reserve, self.reserve))
            if wait:
                return PlaneResult(
                    ok=False,
                    error=f"rate budget spent: next slot in {wait:.1f} s",
                    retry_after=wait,
                )
            self.sent += 1
            try:
                response = self.session.request(
                    method, url, json=json, params=params, timeout=timeout
                )
            except requests.ConnectionError as exc:
                never = _never_connected(exc)
                # The wording tells callers of non-idempotent calls whether Plane may
                # have the request: "cannot reach" means it certainly does not.
                why = "cannot reach Plane" if never else "the connection to Plane broke"
                result = PlaneResult(ok=False, error=f"{why}: {exc}")
                # A connection that was never made is safe to retry; one that broke after
                # the request left may have reached Plane, so only an idempotent call is.
                if idempotent or never:
                    continue
                return result
            except requests.Timeout as exc:
                result = PlaneResult(ok=False, error=f"Plane did not answer in time: {exc}")
                if idempotent:
                    continue
                return result
            except requests.RequestException as exc:
                return PlaneResult(ok=False, error=f"request to Plane failed: {exc}")
            result = self._result(response)
            if response.status_code == 429:
                self.budget.block(result.retry_after)
                return result
            if response.status_code >= 500 and idempotent:
                continue
            return result
        return result

    def _seconds_left(self) -> float:
        at = _time_limit.get()
        return float("inf") if at is None else at - time.monotonic()

    def _timeout(self) -> tuple[float, float] | None:
        """(connect, read) timeouts that together fit in the time left, or None."""
        left = self._seconds_left()
        if left < MIN_SECONDS_LEFT:
            return None
        connect = min(self.timeout[0], left / 2)
        return connect, min(self.timeout[1], left - connect)

    def _result(self, response: requests.Response) -> PlaneResult:
        status = response.status_code
        if status == 429:
            try:
                retry_after = max(1.0, float(response.headers.get("Retry-After", "")))
            except ValueError:
                retry_after = 60.0
            return PlaneResult(
                ok=False, status=429, error="Plane's rate limit", retry_after=retry_after
            )
        if 200 <= status < 300:
            try:
                data = response.json() if response.content else None
            except ValueError:
                return PlaneResult(ok=False, status=status, error="Plane answered with no JSON")
            return PlaneResult(ok=True, status=status, data=data)
        if status == 401:
            error = "Plane wants an API key (401): set PLANE_API_KEY"
        elif status == 403:
            error = f"Plane refused the API key (403): {_message(response)}"
        else:
            error = f"Plane answered {status}: {_message(response)}"
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        return PlaneResult(ok=False, status=status, error=error, data=body)
