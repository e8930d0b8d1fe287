"""The checks' judgement (monitoring/analysis.py): pure, so a table of cases."""

import math

import pytest

from monitoring.analysis import Condition, Limit, Tally, assess, judge_window
from monitoring.classifier import Counts, ProbeResult, Rules, Verdict

S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNMEASURED
RULES = Rules(fail_threshold=3, error_ratio=0.25, min_samples=4)
HEALTHY_PROBES = Counts(measured=5)


@pytest.mark.parametrize(
    ("condition", "threshold", "value", "baseline", "result"),
    [
        (Condition.MAX, 0.05, 0.04, None, S),
        (Condition.MAX, 0.05, 0.05, None, S),  # at the limit is within it
        (Condition.MAX, 0.05, 0.06, None, F),
        (Condition.MIN, 100, 120, None, S),
        (Condition.MIN, 100, 80, None, F),
        (Condition.MAX_VS_BASELINE, 2, 0.41, 0.21, S),
        (Condition.MAX_VS_BASELINE, 2, 1.02, 0.21, F),
        (Condition.MIN_VS_BASELINE, 0.5, 60, 100, S),
        (Condition.MIN_VS_BASELINE, 0.5, 40, 100, F),
        (Condition.MAX_VS_BASELINE, 2, 1.02, None, U),  # no baseline: cannot judge
        (Condition.MAX_VS_BASELINE, 2, 1.02, math.nan, U),
        (Condition.MAX, 0.05, None, None, U),  # no data
        (Condition.MAX, 0.05, math.nan, None, U),  # NaN is no data, never a pass
        (Condition.MIN, 100, math.nan, None, U),
    ],
)
def test_a_measurement_is_judged_by_its_condition(condition, threshold, value, baseline, result):
    assert assess(value, Limit(condition, threshold), baseline)[0] is result


def test_a_failure_says_the_value_and_the_limit():
    _, why = assess(1.02, Limit(Condition.MAX_VS_BASELINE, 2), 0.21)
    assert why == "1.02 > 2 × baseline 0.21"
    assert assess(80, Limit(Condition.MIN, 100), None)[1] == "80 < 100"


def tally(name="p99", condition=Condition.MAX, threshold=1.0, limit=1, **counts) -> Tally:
    return Tally(name, Limit(condition, threshold), limit, **counts)


@pytest.mark.parametrize(
    ("failed", "failure_limit", "verdict"),
    [
        (0, 1, None),
        (1, 1, None),  # at the failure limit: not yet (more than N fail the deploy)
        (2, 1, Verdict.DEGRADED),
        (1, 0, Verdict.DEGRADED),
        (3, 3, None),
        (4, 3, Verdict.DEGRADED),
    ],
)
def test_more_failures_than_the_limit_are_degraded_at_once(failed, failure_limit, verdict):
    counted = tally(limit=failure_limit, measured=6, failed=failed)
    assert judge_window(HEALTHY_PROBES, RULES, [counted], closing=False)[0] is verdict


def test_the_reason_names_the_check_its_value_condition_and_baseline():
    counted = tally(
        condition=Condition.MAX_VS_BASELINE,
        threshold=2,
        measured=9,
        failed=4,
        baseline=0.21,
        last_failed_value=1.02,
        limit=3,
    )
    verdict, why = judge_window(HEALTHY_PROBES, RULES, [counted], closing=False)
    assert verdict is Verdict.DEGRADED
    assert why.startswith("p99: 1.02 > 2 × baseline 0.21 in 4 of 9 measurements")


def test_unmeasured_runs_never_fail_and_end_inconclusive():
    never = tally(unmeasured=12)
    assert judge_window(HEALTHY_PROBES, RULES, [never], closing=False) == (None, "")
    verdict, why = judge_window(HEALTHY_PROBES, RULES, [never], closing=True)
    assert verdict is Verdict.INCONCLUSIVE
    assert "p99: only 0 of 12 measurements had a value (need 4)" in why


def test_a_baseline_check_without_baseline_is_inconclusive_and_says_so():
    counted = tally(condition=Condition.MAX_VS_BASELINE, threshold=2, unmeasured=6)
    verdict, why = judge_window(HEALTHY_PROBES, RULES, [counted], closing=True)
    assert verdict is Verdict.INCONCLUSIVE and "no baseline" in why


def test_enough_measured_values_are_healthy_at_the_close_only():
    counted = [tally(measured=4, failed=1, unmeasured=3), tally("queue", measured=7)]
    assert judge_window(HEALTHY_PROBES, RULES, counted, closing=False) == (None, "")
    verdict, why = judge_window(HEALTHY_PROBES, RULES, counted, closing=True)
    assert verdict is Verdict.HEALTHY
    assert "p99 failed 1 of 7 (limit 1)" in why


def test_a_degraded_check_wins_over_another_without_data():
    counted = [tally("empty", unmeasured=9), tally(measured=3, failed=2)]
    verdict, why = judge_window(HEALTHY_PROBES, RULES, counted, closing=True)
    assert verdict is Verdict.DEGRADED and why.startswith("p99:")


def test_health_rules_still_apply_beside_checks():
    failing = Counts(consecutive_failures=3, measured=3)
    verdict, why = judge_window(failing, RULES, [tally(measured=3)], closing=False)
    assert verdict is Verdict.DEGRADED and "health probes failed in a row" in why
    few_probes = Counts(measured=1, unmeasured=4)
    verdict, _ = judge_window(few_probes, RULES, [tally(measured=5)], closing=True)
    assert verdict is Verdict.INCONCLUSIVE


def test_without_a_health_url_the_checks_alone_judge():
    nothing_probed = Counts()
    verdict, _ = judge_window(
        nothing_probed, RULES, [tally(measured=5)], closing=True, health=False
    )
    assert verdict is Verdict.HEALTHY
    # Neither a health URL nor a check: nothing measured, as before the checks.
    verdict, _ = judge_window(nothing_probed, RULES, [], closing=True, health=False)
    assert verdict is Verdict.INCONCLUSIVE
