"""Reading a check's number: from Prometheus (a PromQL query) or an HTTP endpoint's JSON.

Network only, no database, so many run at once in threads. Whatever keeps us from one
number (the source down or erroring, an empty result, NaN, several series, a missing JSON
path) is a `Reading` without a value and with the reason: unmeasured, never a failure.
"""

import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import requests
from django.conf import settings


@dataclass(frozen=True)
class Reading:
    value: float | None
    error: str = ""


@dataclass(frozen=True)
class DeployFacts:
    """What a query's placeholders are filled with."""

    repo: str
    environment: str = "production"
    commit_sha: str = ""


class CheckRefused(Exception):
    """The check cannot be run as given (the message says why, for the operator)."""


def fill(query: str, facts: DeployFacts) -> str:
    # Not str.format: PromQL's label matchers are in braces too.
    return (
        query.replace("{repo}", facts.repo)
        .replace("{environment}", facts.environment)
        .replace("{commit_sha}", facts.commit_sha)
    )


def baseline_query(query: str, minutes: int) -> str:
    """The query's average over the `minutes` before the time it is evaluated at."""
    return f"avg_over_time(({query})[{minutes}m:])"


def _prometheus() -> tuple[str, dict, tuple[str, str] | None]:
    """Prometheus's base URL without credentials, the headers, and basic auth (if any)."""
    url = settings.PROMETHEUS_URL
    if not url:
        raise CheckRefused("PROMETHEUS_URL is not set: Stageboard knows no Prometheus to ask")
    parts = urlsplit(url)
    auth = None
    if parts.username is not None:
        auth = (parts.username, parts.password or "")
        host = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    headers = {}
    if settings.PROMETHEUS_BEARER_TOKEN:
        headers["Authorization"] = f"Bearer {settings.PROMETHEUS_BEARER_TOKEN}"
    return url.rstrip("/"), headers, auth


def _ask(query: str, at: datetime | None, timeout: float) -> requests.Response:
    base, headers, auth = _prometheus()
    params = {"query": query}
    if at is not None:
        params["time"] = f"{at.timestamp():.3f}"
    return requests.get(
        f"{base}/api/v1/query", params=params, headers=headers, auth=auth, timeout=timeout
    )


def read_prometheus(query: str, at: datetime | None, timeout: float) -> Reading:
    """The query's one number at `at` (None: now)."""
    try:
        response = _ask(query, at, timeout)
    except CheckRefused as exc:
        return Reading(None, str(exc))
    except requests.RequestException as exc:
        return Reading(None, f"Prometheus unreachable: {exc}")
    return parse_prometheus(response.status_code, response.text)


def parse_prometheus(status: int, body: str) -> Reading:
    """One number from an answer of Prometheus's `/api/v1/query`, or why there is none."""
    try:
        answer = json.loads(body)
    except ValueError:
        return Reading(None, f"Prometheus answered {status} without JSON")
    if not isinstance(answer, dict):
        return Reading(None, f"Prometheus answered {status} with an unknown shape")
    if answer.get("status") != "success":
        kind = answer.get("errorType", "error")
        return Reading(None, f"Prometheus answered {status}: {kind}: {answer.get('error', '')}")
    data = answer.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    try:
        if kind in ("scalar", "string"):
            raw = result[1]
        elif kind == "vector":
            if not result:
                return Reading(None, "no data (an empty result)")
            if len(result) > 1:
                return Reading(None, f"{len(result)} series where one number is needed")
            raw = result[0]["value"][1]
        else:
            return Reading(None, f"a {kind} result where one number is needed")
        value = float(raw)
    except (TypeError, ValueError, KeyError, IndexError):
        return Reading(None, "an answer without a number")
    if math.isnan(value) or math.isinf(value):
        return Reading(None, f"no data ({raw})")
    return Reading(value)


def validate_promql(query: str, timeout: float) -> None:
    """Ask Prometheus whether it can parse the query; CheckRefused says why not.

    Prometheus answers 400 `bad_data` to a query it cannot parse. A query that parses but
    finds nothing now is fine: the service may not run yet.
    """
    filled = fill(query, DeployFacts(repo="repo", environment="production", commit_sha="0" * 40))
    try:
        response = _ask(filled, None, timeout)
    except requests.RequestException as exc:
        raise CheckRefused(
            f"cannot reach Prometheus at {settings.PROMETHEUS_URL} to check the query: {exc}"
        ) from None
    if response.status_code == 400:
        try:
            error = response.json().get("error", response.text)
        except ValueError:
            error = response.text
        raise CheckRefused(f"Prometheus refuses the query: {error}")
    if response.status_code in (401, 403):
        raise CheckRefused(
            f"Prometheus answered {response.status_code}: check PROMETHEUS_BEARER_TOKEN or "
            "the credentials in PROMETHEUS_URL"
        )
    if response.status_code >= 400:
        raise CheckRefused(f"Prometheus answered {response.status_code} to the query")


@lru_cache(maxsize=1024)  # every tick reads the same few paths again
def compile_json_path(path: str):
    """The compiled JSONPath (RFC 9535); CheckRefused says what is wrong with it."""
    # Imported on the first HTTP check, not with the app: about 2 MB (with its regex
    # engine) in each process tree, which a team without HTTP checks never needs.
    import jsonpath_rfc9535 as jsonpath

    try:
        return jsonpath.compile(path)
    except jsonpath.JSONPathError as exc:
        raise CheckRefused(f"bad JSONPath {path!r}: {exc}") from None


def read_http(url: str, path: str, timeout: float) -> Reading:
    """The one number at `path` in the JSON that `url` answers."""
    try:
        response = requests.get(url, timeout=timeout, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        return Reading(None, f"unreachable: {exc}")
    if response.status_code >= 400:
        return Reading(None, f"answered {response.status_code}")
    try:
        document = response.json()
    except ValueError:
        return Reading(None, f"answered {response.status_code} without JSON")
    try:
        values = compile_json_path(path).find(document).values()
    except CheckRefused as exc:
        return Reading(None, str(exc))
    if not values:
        return Reading(None, f"no data: nothing at {path}")
    if len(values) > 1:
        return Reading(None, f"{len(values)} values at {path} where one number is needed")
    raw = values[0]
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        return Reading(None, f"not a number at {path}: {str(raw)[:100]}")
    try:
        value = float(raw)
    except ValueError:
        return Reading(None, f"not a number at {path}: {raw[:100]}")
    if math.isnan(value) or math.isinf(value):
        return Reading(None, f"no data ({raw})")
    return Reading(value)


@dataclass(frozen=True)
class CheckReading:
    """One check read once: its value now, and its baseline when it needed one asked."""

    name: str
    value: float | None
    error: str = ""
    baseline: float | None = None
    baseline_asked: bool = False  # asked now (to be stored), not taken from the window
    baseline_error: str = ""


def read_check(
    check, facts: DeployFacts, deploy_started_at: datetime, baseline: float | None, timeout: float
) -> CheckReading:
    """Read `check` (a `monitoring.models.Check`) now, and its baseline if it needs one and
    `baseline` is None: the query's average over the minutes before the deploy started."""
    if check.provider == "http":
        reading = read_http(check.url, check.json_path, timeout)
        return CheckReading(check.name, reading.value, reading.error)
    query = fill(check.query, facts)
    asked, baseline_error = False, ""
    if check.limit.needs_baseline and baseline is None:
        before = read_prometheus(
            baseline_query(query, check.baseline_minutes), deploy_started_at, timeout
        )
        baseline, baseline_error, asked = before.value, before.error, True
    reading = read_prometheus(query, None, timeout)
    return CheckReading(check.name, reading.value, reading.error, baseline, asked, baseline_error)
