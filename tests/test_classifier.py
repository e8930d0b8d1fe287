"""The monitor's judgement, as a pure function of counts and rules."""

import pytest

from monitoring.classifier import Counts, ProbeResult, Rules, Verdict, classify, judge

RULES = Rules(fail_threshold=3, error_ratio=0.25, min_samples=4)
S, F, U = ProbeResult.SUCCESS, ProbeResult.FAILURE, ProbeResult.UNMEASURED


def counted(*probes) -> Counts:
    counts = Counts()
    for result, status in probes:
        counts = counts.after(result, status)
    return counts


@pytest.mark.parametrize(
    "status,reached,result",
    [
        (200, True, S),
        (302, True, S),
        (404, True, F),
        (503, True, F),
        (None, True, F),
        (None, False, U),
    ],
)
def test_a_probe_is_classified_by_its_answer(status, reached, result):
    assert classify(status, reached=reached) is result


def test_a_success_resets_the_run_and_unmeasured_probes_leave_it_alone():
    counts = counted((F, 500), (F, 500), (U, None), (S, 200), (F, 404), (U, None))
    assert (
        counts.consecutive_failures,
        counts.measured,
        counts.server_errors,
        counts.unmeasured,
    ) == (
        1,
        4,
        2,
        2,
    )


def test_the_run_of_failures_trips_at_the_threshold_not_before():
    assert judge(counted((F, 404), (F, 404)), RULES, closing=False) == (None, "")
    verdict, why = judge(counted((F, 404), (F, 404), (F, 404)), RULES, closing=False)
    assert verdict is Verdict.DEGRADED and "3 health probes failed in a row" in why


def test_the_5xx_ratio_needs_min_samples_and_must_exceed_the_threshold():
    three = counted((F, 500), (S, 200), (S, 200))  # 33 %, but 3 < 4 samples
    assert judge(three, RULES, closing=False)[0] is None
    exactly = counted((F, 500), (S, 200), (S, 200), (S, 200))  # 25 % is not above 25 %
    assert judge(exactly, RULES, closing=False)[0] is None
    over = counted((F, 500), (S, 200), (F, 502), (S, 200))
    assert judge(over, RULES, closing=False)[0] is Verdict.DEGRADED


def test_an_error_rate_source_counts_once_there_are_min_samples():
    quiet = counted(*[(S, 200)] * 4)
    assert judge(Counts(0, 4, 0, 0, 0.3), RULES, closing=False)[0] is Verdict.DEGRADED
    assert judge(Counts(0, 3, 0, 0, 0.3), RULES, closing=False)[0] is None
    assert judge(quiet, RULES, closing=False)[0] is None


def test_at_close_it_is_healthy_or_inconclusive_when_too_little_was_measured():
    assert judge(counted(*[(S, 200)] * 4), RULES, closing=True)[0] is Verdict.HEALTHY
    verdict, why = judge(counted((S, 200), *[(U, None)] * 9), RULES, closing=True)
    assert verdict is Verdict.INCONCLUSIVE
    assert why == "only 1 of 10 probes could be made (need 4)"


def test_degraded_wins_over_closing():
    assert judge(counted(*[(F, 500)] * 3), RULES, closing=True)[0] is Verdict.DEGRADED
