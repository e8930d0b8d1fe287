"""Board statuses: the logical keys and how each resolves to a Plane state.

Pure: the caller hands in a project's states (as Plane lists them) and optional custom
names; no Django, no network.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

BASE_KEYS = ("todo", "in_progress", "done", "blocked", "cancelled")
PIPELINE_KEYS = (
    "to_analyse",
    "analysis",
    "code_review",
    "awaiting_deploy",
    "deploying",
    "monitoring",
)
KEYS = PIPELINE_KEYS + BASE_KEYS

DEFAULT_NAMES: Mapping[str, str] = {
    "to_analyse": "To Analyse",
    "analysis": "Analysis",
    "code_review": "Code Review",
    "awaiting_deploy": "Awaiting Deploy",
    "deploying": "Deploying",
    "monitoring": "Monitoring after Deploy",
    "todo": "Todo",
    "in_progress": "In Progress",
    "done": "Done",
    "blocked": "Blocked",
    "cancelled": "Cancelled",
}

# The statuses the pipeline shows beyond Plane's defaults, with the group each belongs in (so
# Plane's own views count them right: Monitoring after Deploy is finished work), a colour, and
# what it means. `manage.py plane_states --create` makes the missing ones; docs/operations.md
# lists them (a test holds the two together).
CREATED_KEYS = (*PIPELINE_KEYS, "blocked")
GROUPS: Mapping[str, str] = {
    "to_analyse": "unstarted",
    "analysis": "started",
    "code_review": "started",
    "awaiting_deploy": "started",
    "deploying": "started",
    "monitoring": "completed",
    "blocked": "started",
}
COLOURS: Mapping[str, str] = {
    "to_analyse": "#3B82F6",
    "analysis": "#6B7280",
    "code_review": "#8B5CF6",
    "awaiting_deploy": "#D97706",
    "deploying": "#F59E0B",
    "monitoring": "#10B981",
    "blocked": "#DC2626",
}
MEANINGS: Mapping[str, str] = {
    "to_analyse": "a person moves a work item here to start its task (or re-open a finished one)",
    "analysis": "the task is in analysis",
    "code_review": "its change is in review",
    "awaiting_deploy": "its deploy waits for an operator's approval",
    "deploying": "its deploy is running",
    "monitoring": "deployed; production is watched for the post-deploy window",
    "blocked": "the post-deploy window ended DEGRADED: a person must look",
}

# A key whose state the project lacks shows its fallback key's state, in the same project.
FALLBACK: Mapping[str, str] = {
    "to_analyse": "todo",
    "analysis": "in_progress",
    "code_review": "in_progress",
    "awaiting_deploy": "in_progress",
    "deploying": "in_progress",
    "monitoring": "done",
    "blocked": "in_progress",
}

# A base key whose name the project lacks shows the project's default state of this group.
BASE_GROUP: Mapping[str, str] = {
    "todo": "unstarted",
    "in_progress": "started",
    "done": "completed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class State:
    id: str
    name: str
    group: str
    default: bool = False
    sequence: float = 0.0

    @classmethod
    def from_plane(cls, raw: Mapping) -> "State":
        return cls(
            id=str(raw["id"]),
            name=str(raw.get("name") or ""),
            group=str(raw.get("group") or ""),
            default=bool(raw.get("default")),
            sequence=float(raw.get("sequence") or 0),
        )


@dataclass(frozen=True)
class Resolution:
    key: str
    state: State | None
    # How the state was found: the key's own name, or the fallback path taken.
    via: str
    fell_back: bool

    @property
    def state_id(self) -> str | None:
        return self.state.id if self.state else None


def unknown_names(names: Mapping[str, str]) -> list[str]:
    """Keys in a custom name map that are not status keys."""
    return sorted(set(names) - set(KEYS))


def resolve(
    key: str, states: Iterable[State], names: Mapping[str, str] | None = None
) -> Resolution:
    """The state that shows `key` in a project with `states` (custom `names` first)."""
    if key not in DEFAULT_NAMES:
        raise ValueError(f"unknown status key {key!r}; known: {', '.join(KEYS)}")
    states = list(states)
    names = names or {}
    wanted = (names.get(key) or DEFAULT_NAMES[key]).strip().casefold()
    for state in states:
        if state.name.strip().casefold() == wanted:
            return Resolution(key, state, f"name {state.name!r}", fell_back=False)
    if key in FALLBACK:
        fallback = resolve(FALLBACK[key], states, names)
        return Resolution(key, fallback.state, f"{FALLBACK[key]}: {fallback.via}", fell_back=True)
    group = BASE_GROUP.get(key)
    in_group = sorted(
        (s for s in states if s.group == group), key=lambda s: (not s.default, s.sequence)
    )
    if in_group:
        return Resolution(key, in_group[0], f"default {group} state {in_group[0].name!r}", True)
    return Resolution(key, None, f"no state named {wanted!r} and no {group} state", True)


def missing(states: Iterable[State], names: Mapping[str, str] | None = None) -> list[str]:
    """The keys of `CREATED_KEYS` no state of the project shows by its own name."""
    states = list(states)
    return [key for key in CREATED_KEYS if resolve(key, states, names).fell_back]


def name_of(key: str, names: Mapping[str, str] | None = None) -> str:
    """The state name a key resolves by in a project: its custom name, else the default."""
    return ((names or {}).get(key) or DEFAULT_NAMES[key]).strip()


def resolution_map(states: Iterable[State], names: Mapping[str, str] | None = None) -> dict:
    """Every key's state id in a project (None where no state shows it)."""
    states = list(states)
    return {key: resolve(key, states, names).state_id for key in KEYS}


def key_showing(state_id: str, resolved: Mapping[str, str | None], prefer: str = "") -> str:
    """The key a state shows, given `resolution_map`: `prefer` when it is one of them (a
    fallback can make several keys show one state), else the first; "" when none does."""
    keys = [key for key, shown in resolved.items() if shown == state_id]
    if prefer in keys:
        return prefer
    return keys[0] if keys else ""
