"""The pure rules: the transition tables and the gates, without a database."""

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import product

import pytest

from pipeline import gates
from pipeline.stages import (
    DEPLOY_PHASE_TRANSITIONS,
    STAGE_TRANSITIONS,
    TERMINAL_STAGES,
    DeployPhase,
    Stage,
    phase_transition_refusal,
    stage_transition_refusal,
)

ALLOWED = {
    ("analysis", "development"),
    ("analysis", "cancelled"),
    ("development", "code_review"),
    ("development", "cancelled"),
    ("code_review", "development"),
    ("code_review", "deploy"),
    ("code_review", "cancelled"),
    ("deploy", "done"),
    ("deploy", "development"),
    ("deploy", "cancelled"),
}


@dataclass
class Facts:
    stage: str = "deploy"
    deploy_phase: str = ""
    deploy_approved_at: datetime | None = None


def test_the_stage_names_are_the_contract():
    assert [s.value for s in Stage] == [
        "analysis",
        "development",
        "code_review",
        "deploy",
        "done",
        "cancelled",
    ]
    assert [p.value for p in DeployPhase if p] == [
        "awaiting_approval",
        "deploying",
        "succeeded",
        "failed",
    ]
    assert TERMINAL_STAGES == {"done", "cancelled"}


def test_the_table_allows_exactly_the_designed_transitions():
    table = {(str(a), str(b)) for a, targets in STAGE_TRANSITIONS.items() for b in targets}
    assert table == ALLOWED


@pytest.mark.parametrize("current,to", list(product(Stage, Stage)))
def test_it_explains_every_refused_pair(current, to):
    refusal = stage_transition_refusal(current, to)
    if (current, to) in ALLOWED:
        assert refusal is None
    else:
        assert refusal and str(current) in refusal


def test_a_terminal_stage_says_only_reopening_leads_out():
    assert "only re-opening" in stage_transition_refusal(Stage.DONE, Stage.ANALYSIS)
    assert "only re-opening" in stage_transition_refusal(Stage.CANCELLED, Stage.DEPLOY)


def test_a_refusal_names_where_the_task_can_go():
    refusal = stage_transition_refusal(Stage.ANALYSIS, Stage.DONE)
    assert refusal == (
        "analysis -> done is not allowed; from analysis a task can go to cancelled, development"
    )


@pytest.mark.parametrize("current,to", list(product(DeployPhase, DeployPhase)))
def test_the_deploy_phase_only_moves_forward(current, to):
    forward = {
        ("", "awaiting_approval"),
        ("awaiting_approval", "deploying"),
        ("deploying", "succeeded"),
        ("deploying", "failed"),
    }
    assert (phase_transition_refusal(current, to) is None) == ((current, to) in forward)
    assert set(DEPLOY_PHASE_TRANSITIONS) == set(DeployPhase)


@pytest.mark.parametrize("phase", [p for p in DeployPhase if p != DeployPhase.SUCCEEDED])
def test_check_deploy_status_fails_unless_the_deploy_succeeded(phase):
    result = gates.check_deploy_status(Facts(deploy_phase=phase))
    assert not result.passed
    assert result.gate == "check_deploy_status"
    assert f"the deploy phase is {phase or 'not requested'}" in result.reason


def test_check_deploy_status_passes_a_succeeded_deploy():
    assert gates.check_deploy_status(Facts(deploy_phase="succeeded")).passed


def test_check_deploy_approved_needs_an_approval():
    assert not gates.check_deploy_approved(Facts(deploy_phase="awaiting_approval")).passed
    approved = Facts(deploy_phase="awaiting_approval", deploy_approved_at=datetime.now(UTC))
    assert gates.check_deploy_approved(approved).passed


def test_gates_are_bound_to_their_transitions():
    assert gates.gates_for("stage", "deploy", "done") == [gates.check_deploy_status]
    assert gates.gates_for("phase", "awaiting_approval", "deploying") == [
        gates.check_deploy_approved
    ]
    assert gates.gates_for("stage", "analysis", "development") == []


def test_first_failure_reports_the_failing_gate_and_none_when_all_pass():
    failure = gates.first_failure("stage", Facts(deploy_phase="deploying"), "done")
    assert failure.gate == "check_deploy_status"
    assert gates.first_failure("stage", Facts(deploy_phase="succeeded"), "done") is None


def test_a_gate_binds_to_exactly_one_transition():
    with pytest.raises(TypeError):
        gates.gate()
    with pytest.raises(TypeError):
        gates.gate(stage=(Stage.DEPLOY, Stage.DONE), phase=(DeployPhase.NONE, DeployPhase.FAILED))
