"""Measuring production: one health probe and, where configured, one error-rate reading.

Network only, no database, so many run at once in threads. Our side's trouble (no URL,
no connection could be made) is UNMEASURED, never a health failure; a service that takes
the connection and then does not answer in time is a FAILURE.
"""

import time
from dataclasses import dataclass

import requests

from monitoring.classifier import ProbeResult, classify


@dataclass(frozen=True)
class Measurement:
    kind: str  # "health" or "error_rate"
    result: ProbeResult
    status: int | None = None
    latency_ms: float | None = None
    value: float | None = None
    error: str = ""


def probe_health(url: str, timeout: float) -> Measurement:
    if not url:
        return Measurement("health", ProbeResult.UNMEASURED, error="no health URL configured")
    started = time.perf_counter()
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False)
    except requests.ConnectTimeout as exc:
        return Measurement("health", ProbeResult.UNMEASURED, error=f"no connection: {exc}")
    except requests.ReadTimeout:
        elapsed = 1000 * (time.perf_counter() - started)
        return Measurement(
            "health",
            classify(None, reached=True),
            latency_ms=elapsed,
            error=f"no answer within {timeout:g} s",
        )
    except requests.RequestException as exc:
        return Measurement("health", ProbeResult.UNMEASURED, error=f"no connection: {exc}")
    elapsed = 1000 * (time.perf_counter() - started)
    result = classify(response.status_code, reached=True)
    error = "" if result is ProbeResult.SUCCESS else f"answered {response.status_code}"
    return Measurement("health", result, response.status_code, elapsed, error=error)


def read_error_rate(url: str, timeout: float) -> Measurement | None:
    """The 5xx ratio from a Prometheus query URL (an instant vector of one value)."""
    if not url:
        return None
    try:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        value = float(response.json()["data"]["result"][0]["value"][1])
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
        return Measurement("error_rate", ProbeResult.UNMEASURED, error=f"cannot read: {exc}")
    return Measurement("error_rate", ProbeResult.SUCCESS, response.status_code, value=value)
