"""The board's pure rules: which status a truth shows, and which state shows a status."""

import pytest

from plane_integration.mapping import WindowFacts, status_key
from plane_integration.statuses import KEYS, State, resolve

# --- what each task shows ---------------------------------------------


@pytest.mark.parametrize(
    "stage,phase,window,key",
    [
        ("analysis", "", None, "analysis"),
        ("development", "", None, "in_progress"),
        ("development", "failed", None, "in_progress"),
        ("code_review", "", None, "code_review"),
        ("deploy", "", None, "awaiting_deploy"),
        ("deploy", "awaiting_approval", None, "awaiting_deploy"),
        ("deploy", "deploying", None, "deploying"),
        ("done", "succeeded", WindowFacts(active=True), "monitoring"),
        ("done", "succeeded", WindowFacts(active=False, verdict="HEALTHY"), "done"),
        ("done", "succeeded", None, "done"),  # repo not monitored
        ("done", "succeeded", WindowFacts(active=False, verdict="DEGRADED"), "blocked"),
        ("done", "succeeded", WindowFacts(active=False, verdict="INCONCLUSIVE"), "done"),
        ("cancelled", "", None, "cancelled"),
        ("cancelled", "deploying", None, "cancelled"),
    ],
)
def test_each_truth_shows_its_status(stage, phase, window, key):
    assert status_key(stage, phase, window) == key


def test_an_unknown_stage_has_no_status():
    with pytest.raises(ValueError):
        status_key("shipped", "")


# --- resolving a key to a state ----------------------------------------------------------


def states(*specs) -> list[State]:
    return [
        State(id=f"id-{name}", name=name, group=group, default=default, sequence=n)
        for n, (name, group, default) in enumerate(specs)
    ]


NEW_PROJECT = states(
    ("Backlog", "backlog", True),
    ("Todo", "unstarted", False),
    ("In Progress", "started", False),
    ("Done", "completed", False),
    ("Cancelled", "cancelled", False),
)
PIPELINE_PROJECT = NEW_PROJECT + states(
    ("To Analyse", "unstarted", False),
    ("Analysis", "started", False),
    ("Code Review", "started", False),
    ("Awaiting Deploy", "started", False),
    ("Deploying", "started", False),
    ("Monitoring after Deploy", "completed", False),
    ("Blocked", "started", False),
)


@pytest.mark.parametrize("key", KEYS)
def test_a_pipeline_project_shows_every_key_by_its_own_name(key):
    resolution = resolve(key, PIPELINE_PROJECT)
    assert not resolution.fell_back
    assert (
        resolution.state.name.casefold()
        == {
            "to_analyse": "to analyse",
            "analysis": "analysis",
            "code_review": "code review",
            "awaiting_deploy": "awaiting deploy",
            "deploying": "deploying",
            "monitoring": "monitoring after deploy",
            "todo": "todo",
            "in_progress": "in progress",
            "done": "done",
            "blocked": "blocked",
            "cancelled": "cancelled",
        }[key]
    )


@pytest.mark.parametrize(
    "key,shown",
    [
        ("to_analyse", "Todo"),
        ("analysis", "In Progress"),
        ("code_review", "In Progress"),
        ("awaiting_deploy", "In Progress"),
        ("deploying", "In Progress"),
        ("monitoring", "Done"),
        ("blocked", "In Progress"),
    ],
)
def test_a_project_without_the_new_statuses_falls_back_to_base_ones(key, shown):
    resolution = resolve(key, NEW_PROJECT)
    assert resolution.fell_back
    assert resolution.state.name == shown


def test_names_match_case_insensitively_and_ignore_spaces_around():
    project = states(("  to analyse ", "unstarted", False), ("Todo", "unstarted", False))
    assert resolve("to_analyse", project).state.name == "  to analyse "


def test_a_renamed_base_status_falls_back_to_the_groups_default_state():
    project = states(
        ("Ideas", "backlog", True),
        ("Ready", "unstarted", False),
        ("Doing", "started", False),
        ("Shipped", "completed", False),
        ("Won't do", "cancelled", False),
    )
    assert resolve("todo", project).state.name == "Ready"
    assert resolve("done", project).state.name == "Shipped"
    assert resolve("cancelled", project).state.name == "Won't do"
    # A pipeline key falls back through its base key to the group.
    analysis = resolve("analysis", project)
    assert analysis.state.name == "Doing"
    assert analysis.via == "in_progress: default started state 'Doing'"


def test_the_group_default_prefers_the_state_marked_default():
    project = states(("First", "started", False), ("Chosen", "started", True))
    assert resolve("in_progress", project).state.name == "Chosen"


def test_custom_names_come_first():
    project = PIPELINE_PROJECT + states(("Watching prod", "completed", False))
    resolution = resolve("monitoring", project, {"monitoring": "watching PROD"})
    assert (resolution.state.name, resolution.fell_back) == ("Watching prod", False)


def test_a_project_with_no_state_for_a_key_resolves_to_nothing_and_says_why():
    resolution = resolve("cancelled", states(("Todo", "unstarted", True)))
    assert resolution.state is None
    assert "no cancelled state" in resolution.via


def test_an_unknown_key_is_an_error():
    with pytest.raises(ValueError, match="unknown status key 'shipping'"):
        resolve("shipping", NEW_PROJECT)
