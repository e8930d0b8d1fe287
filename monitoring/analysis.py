"""The judgement of a window's checks: pure and deterministic, like the classifier.

A check's measurement is a success, a failure, or unmeasured (no number could be had: the
source was down, answered nothing, NaN, or too many series). Unmeasured is never a failure.
A check fails the deploy when more than its failure limit of measurements failed (as Argo
Rollouts counts); at the window's close a check with fewer than `min_samples` measured
values leaves the deploy INCONCLUSIVE, which alerts and never rolls back.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from monitoring.classifier import Counts, ProbeResult, Rules, Verdict, judge


class Condition(StrEnum):
    MAX = "max"
    MIN = "min"
    MAX_VS_BASELINE = "max_vs_baseline"
    MIN_VS_BASELINE = "min_vs_baseline"


BASELINE_CONDITIONS = frozenset({Condition.MAX_VS_BASELINE, Condition.MIN_VS_BASELINE})


def number(value: float) -> str:
    """A value for people: up to four significant digits, no trailing zeros."""
    return f"{value:.4g}"


@dataclass(frozen=True)
class Limit:
    condition: Condition
    threshold: float  # the fixed limit, or the ratio to the baseline

    @property
    def needs_baseline(self) -> bool:
        return self.condition in BASELINE_CONDITIONS

    def bound(self, baseline: float | None) -> float | None:
        """The value the measurements are held to (None: a baseline is missing)."""
        if not self.needs_baseline:
            return self.threshold
        return None if baseline is None else self.threshold * baseline

    def breached(self, value: float, baseline: float | None) -> bool:
        bound = self.bound(baseline)
        if self.condition in (Condition.MAX, Condition.MAX_VS_BASELINE):
            return value > bound
        return value < bound

    def describe(self, baseline: float | None = None) -> str:
        """The condition as the check's failure reads it: `> 2 × baseline 0.21`."""
        sign = ">" if self.condition in (Condition.MAX, Condition.MAX_VS_BASELINE) else "<"
        if not self.needs_baseline:
            return f"{sign} {number(self.threshold)}"
        shown = "?" if baseline is None else number(baseline)
        return f"{sign} {number(self.threshold)} × baseline {shown}"

    def spec(self) -> str:
        """The condition as an operator gives it: `--max-vs-baseline 2`."""
        return f"--{self.condition.value.replace('_', '-')} {number(self.threshold)}"


def assess(value: float | None, limit: Limit, baseline: float | None) -> tuple[ProbeResult, str]:
    """One measurement's result, and why it is not a success."""
    if value is None or math.isnan(value):
        return ProbeResult.UNMEASURED, "no data"
    if limit.needs_baseline and (baseline is None or math.isnan(baseline)):
        return ProbeResult.UNMEASURED, "no baseline"
    if limit.breached(value, baseline):
        return ProbeResult.FAILURE, f"{number(value)} {limit.describe(baseline)}"
    return ProbeResult.SUCCESS, ""


@dataclass(frozen=True)
class Tally:
    """One check's measurements in a window so far."""

    name: str
    limit: Limit
    failure_limit: int
    measured: int = 0  # measurements that got a number (successes and failures)
    failed: int = 0
    unmeasured: int = 0
    baseline: float | None = None
    last_failed_value: float | None = None

    @property
    def total(self) -> int:
        return self.measured + self.unmeasured

    @property
    def tripped(self) -> bool:
        return self.failed > self.failure_limit

    def failure_reason(self) -> str:
        value = "" if self.last_failed_value is None else f"{number(self.last_failed_value)} "
        return (
            f"{self.name}: {value}{self.limit.describe(self.baseline)} "
            f"in {self.failed} of {self.total} measurements "
            f"(failure limit {self.failure_limit})"
        )


def judge_window(
    counts: Counts,
    rules: Rules,
    tallies: Sequence[Tally],
    *,
    closing: bool,
    health: bool = True,
) -> tuple[Verdict | None, str]:
    """The window's verdict now (None: keep watching) from the health probes and the checks.

    `health`: whether the repo's health URL is watched. A repo may have checks and no health
    URL; one with neither is judged on the health rules, which find it could measure nothing.
    """
    health = health or not tallies
    if health:
        verdict, why = judge(counts, rules, closing=False)
        if verdict is not None:
            return verdict, why
    tripped = [t for t in tallies if t.tripped]
    if tripped:
        return Verdict.DEGRADED, "; ".join(t.failure_reason() for t in tripped)
    if not closing:
        return None, ""
    reasons = []
    if health:
        verdict, why = judge(counts, rules, closing=True)
        if verdict is Verdict.INCONCLUSIVE:
            reasons.append(why)
        healthy = why
    else:
        healthy = "no health URL"
    for tally in tallies:
        if tally.measured < rules.min_samples:
            missing = "no baseline" if tally.limit.needs_baseline and tally.baseline is None else ""
            reasons.append(
                f"{tally.name}: only {tally.measured} of {tally.total} measurements had a "
                f"value (need {rules.min_samples})" + (f"; {missing}" if missing else "")
            )
    if reasons:
        return Verdict.INCONCLUSIVE, "; ".join(reasons)
    if tallies:
        healthy += "; " + ", ".join(
            f"{t.name} failed {t.failed} of {t.total} (limit {t.failure_limit})" for t in tallies
        )
    return Verdict.HEALTHY, healthy
