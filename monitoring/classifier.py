"""The post-deploy monitor's judgement. Pure and deterministic.

DEGRADED as soon as a rule trips: `fail_threshold` health failures in a row (a success
resets the run), or a 5xx ratio above `error_ratio` once `min_samples` probes measured.
At the window's close: HEALTHY, or INCONCLUSIVE when too few probes could be made. A probe
that could not be made (our side) is neither a failure nor a success.
"""

from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    HEALTHY = "HEALTHY"
    DEGRADED = "DEGRADED"
    INCONCLUSIVE = "INCONCLUSIVE"


class ProbeResult(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"  # the service answered badly (4xx, 5xx) or too slowly
    UNMEASURED = "unmeasured"  # the probe could not be made: no verdict either way


@dataclass(frozen=True)
class Rules:
    fail_threshold: int
    error_ratio: float
    min_samples: int


@dataclass(frozen=True)
class Counts:
    consecutive_failures: int = 0
    measured: int = 0  # probes that got an answer
    server_errors: int = 0  # answers with a 5xx status
    unmeasured: int = 0
    source_ratio: float | None = None  # the latest 5xx ratio from an error-rate source

    def after(self, result: ProbeResult, status: int | None) -> "Counts":
        """The counts once a health probe with this result is added."""
        if result is ProbeResult.UNMEASURED:
            return Counts(
                self.consecutive_failures,
                self.measured,
                self.server_errors,
                self.unmeasured + 1,
                self.source_ratio,
            )
        failed = result is ProbeResult.FAILURE
        return Counts(
            self.consecutive_failures + 1 if failed else 0,
            self.measured + 1,
            self.server_errors + (status is not None and status >= 500),
            self.unmeasured,
            self.source_ratio,
        )

    @property
    def ratio(self) -> float:
        return self.server_errors / self.measured if self.measured else 0.0


def judge(counts: Counts, rules: Rules, *, closing: bool) -> tuple[Verdict | None, str]:
    """The verdict the counts call for now (None: keep watching), and why."""
    if counts.consecutive_failures >= rules.fail_threshold:
        return Verdict.DEGRADED, (
            f"{counts.consecutive_failures} health probes failed in a row "
            f"(threshold {rules.fail_threshold})"
        )
    if counts.measured >= rules.min_samples:
        if counts.ratio > rules.error_ratio:
            return Verdict.DEGRADED, (
                f"5xx ratio {counts.ratio:.0%} over {counts.measured} probes "
                f"(threshold {rules.error_ratio:.0%})"
            )
        if counts.source_ratio is not None and counts.source_ratio > rules.error_ratio:
            return Verdict.DEGRADED, (
                f"error-rate source reports a 5xx ratio of {counts.source_ratio:.1%} "
                f"(threshold {rules.error_ratio:.0%})"
            )
    if not closing:
        return None, ""
    if counts.measured < rules.min_samples:
        return Verdict.INCONCLUSIVE, (
            f"only {counts.measured} of {counts.measured + counts.unmeasured} probes could be "
            f"made (need {rules.min_samples})"
        )
    return Verdict.HEALTHY, (
        f"{counts.measured} probes, {counts.server_errors} 5xx, "
        f"longest failure run below {rules.fail_threshold}"
    )


def classify(status: int | None, *, reached: bool) -> ProbeResult:
    """A health probe's result: `reached` is False when no connection could be made."""
    if not reached:
        return ProbeResult.UNMEASURED
    if status is None:  # connected, then no answer in time: the service is not well
        return ProbeResult.FAILURE
    return ProbeResult.SUCCESS if status < 400 else ProbeResult.FAILURE
