"""The stand-in's world: workspaces, projects, states, work items, comments and links.

What Plane stores, and the methods tests call to set it up (`add_project`, `add_work_item`)
and to change it as a person in Plane's web app would (`set_state`,
`create_work_item_as_person`, `delete_work_item`, `archive_work_item`). A person's change
sends Plane's webhook: the world asks for it through `_queue_webhooks`, which the controls
(`plane_standin.controls`) provide. It also shapes a work item as the API answers it and as
a webhook's `data` carries it.

Demo data (``seed_demo``, and the CLI) uses fixed ids so a README can name them:

- workspace slug ``demo`` (uuid ``workspace_uuid("demo")``), project ``DEMO_PROJECT_ID``
  (identifier ``DEMO``) with the default states plus the pipeline states,
- work items ``DEMO-1`` .. ``DEMO-5`` = ``DEMO_WORK_ITEM_IDS``, all in "Todo".

State uuids are derived from the project uuid and the state name (``state_uuid``), so they are
stable across runs too. Standard library only.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

DEFAULT_STATES: list[tuple[str, str]] = [
    ("Backlog", "backlog"),
    ("Todo", "unstarted"),
    ("In Progress", "started"),
    ("Done", "completed"),
    ("Cancelled", "cancelled"),
]
PIPELINE_STATES: list[tuple[str, str]] = [
    ("To Analyse", "unstarted"),
    ("Analysis", "started"),
    ("Code Review", "started"),
    ("Awaiting Deploy", "started"),
    ("Deploying", "started"),
    ("Monitoring after Deploy", "completed"),
    ("Blocked", "started"),
]

BOT_USER_ID = "b0700000-0000-4000-8000-000000000001"
HUMAN_USER_ID = "0a11ce00-0000-4000-8000-000000000002"

DEMO_WORKSPACE = "demo"
DEMO_PROJECT_ID = "0de00000-0000-4000-8000-000000000001"
DEMO_WORK_ITEM_IDS: tuple[str, ...] = tuple(
    f"0de00000-0000-4000-8000-0000000000a{n}" for n in range(1, 6)
)

PRIORITIES = ("urgent", "high", "medium", "low", "none")
STATE_GROUPS = ("backlog", "unstarted", "started", "completed", "cancelled", "triage")
# What Plane's link serializer answers for a second link with the same URL on one work item.
LINK_EXISTS = "URL already exists for this Issue"

# Plane's colours for its default states; other states get their group's colour.
_GROUP_COLORS = {
    "backlog": "#60646C",
    "unstarted": "#60646C",
    "started": "#F59E0B",
    "completed": "#46A758",
    "cancelled": "#9AA4BC",
    "triage": "#4E5355",
}
_ID_NAMESPACE = uuid.UUID("6f1d0c3e-7a51-4d1c-9d5e-0b7e5a3c2f10")

_BOT_ACTOR = {
    "first_name": "Sync",
    "last_name": "Bot",
    "email": "sync-bot@example.com",
    "avatar": "",
    "avatar_url": None,
    "display_name": "sync-bot",
}
_HUMAN_ACTOR = {
    "id": HUMAN_USER_ID,
    "first_name": "Alice",
    "last_name": "Human",
    "email": "alice@example.com",
    "avatar": "",
    "avatar_url": None,
    "display_name": "alice",
}


def workspace_uuid(slug: str) -> str:
    """The uuid the stand-in gives a workspace: derived from its slug, so stable across runs."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"workspace:{slug}"))


def state_uuid(project_id: str, name: str) -> str:
    """The uuid the stand-in gives a state: derived from its project and (case-folded) name."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"state:{project_id}:{name.casefold()}"))


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _strip_tags(html: str) -> str:
    return re.sub(r"<[^>]*>", "", html).strip()


class World:
    """What the stand-in stores. Data methods are thread-safe and return copies."""

    bot_user_id: str
    _lock: threading.RLock

    def _init_world(self) -> None:
        self._workspaces: dict[str, str] = {}  # slug -> uuid
        self._projects: dict[str, dict[str, Any]] = {}
        self._states: dict[str, dict[str, Any]] = {}
        self._items: dict[str, dict[str, Any]] = {}  # insertion order is creation order
        self._comments: dict[str, list[dict[str, Any]]] = {}
        self._links: dict[str, list[dict[str, Any]]] = {}  # newest first, as Plane lists them
        # The demo's "production" (plane_standin.board): its health check and rollback hook.
        self.demo_health_failing = False
        self.demo_rollbacks = 0

    def snapshot(self) -> dict[str, Any]:
        """Everything the world stores, as JSON-ready data (`restore` reads it back)."""
        with self._lock:
            return copy.deepcopy(
                {
                    "workspaces": self._workspaces,
                    "projects": self._projects,
                    "items": self._items,
                    "comments": self._comments,
                    "links": self._links,
                    "demo_health_failing": self.demo_health_failing,
                    "demo_rollbacks": self.demo_rollbacks,
                }
            )

    def restore(self, data: dict[str, Any]) -> None:
        """Put back a `snapshot`: the board as it was when the last run stopped."""
        with self._lock:
            data = copy.deepcopy(data)
            self._workspaces = data["workspaces"]
            self._projects = data["projects"]
            # A project's states and the index by id are the same dicts, as add_state makes them.
            self._states = {s["id"]: s for p in self._projects.values() for s in p["states"]}
            self._items = data["items"]
            self._comments = data["comments"]
            self._links = data["links"]
            self.demo_health_failing = data["demo_health_failing"]
            self.demo_rollbacks = data["demo_rollbacks"]

    def _queue_webhooks(
        self, event: str, action: str, data: dict[str, Any], activities: list[dict[str, Any]]
    ) -> None:
        """Send Plane's deliveries for a change: the controls' webhook sender does."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------- set-up

    def add_workspace(self, slug: str) -> str:
        with self._lock:
            return self._workspaces.setdefault(slug, workspace_uuid(slug))

    def add_project(
        self,
        workspace: str,
        *,
        project_id: str | None = None,
        identifier: str = "PROJ",
        name: str | None = None,
        states: list[tuple[str, str]] | None = None,
    ) -> str:
        project_id = project_id or str(uuid.uuid4())
        states = DEFAULT_STATES if states is None else states
        if not states:
            raise ValueError("a project needs at least one state")
        # Checked up front so a bad list leaves no half-made project behind.
        names = [state_name.casefold() for state_name, _group in states]
        if len(set(names)) != len(names):
            raise ValueError("state names must be unique (case-insensitively)")
        bad_groups = {group for _name, group in states} - set(STATE_GROUPS)
        if bad_groups:
            raise ValueError(f"unknown state groups: {sorted(bad_groups)}")
        with self._lock:
            if project_id in self._projects:
                raise ValueError(f"project {project_id} exists already")
            if any(
                p["workspace_slug"] == workspace and p["identifier"].upper() == identifier.upper()
                for p in self._projects.values()
            ):
                raise ValueError(f"identifier {identifier} is taken in workspace {workspace}")
            workspace_id = self.add_workspace(workspace)
            now = now_iso()
            self._projects[project_id] = {
                "id": project_id,
                "identifier": identifier,
                "name": name or identifier,
                "workspace_slug": workspace,
                "workspace": workspace_id,
                "created_at": now,
                "updated_at": now,
                "states": [],
                "next_sequence": 1,
            }
            for state_name, group in states:
                self.add_state(workspace, project_id, state_name, group)
            project_states = self._projects[project_id]["states"]
            default = next(
                (s for s in project_states if s["group"] == "backlog"), project_states[0]
            )
            default["default"] = True
        return project_id

    def add_state(self, workspace: str, project_id: str, name: str, group: str) -> str:
        if group not in STATE_GROUPS:
            raise ValueError(f"unknown state group {group!r}")
        with self._lock:
            project = self._project(workspace, project_id)
            if any(s["name"].casefold() == name.casefold() for s in project["states"]):
                raise ValueError(f"state {name!r} exists already in project {project_id}")
            state_id = state_uuid(project_id, name)
            state = {
                "id": state_id,
                "name": name,
                "group": group,
                "color": _GROUP_COLORS[group],
                "sequence": 15000 + 10000 * len(project["states"]),
                "default": False,
                "description": "",
                "project": project_id,
                "workspace": project["workspace"],
            }
            project["states"].append(state)
            self._states[state_id] = state
            return state_id

    def add_work_item(
        self,
        workspace: str,
        project_id: str,
        name: str = "Work item",
        *,
        state: str | None = None,
        work_item_id: str | None = None,
    ) -> str:
        work_item_id = work_item_id or str(uuid.uuid4())
        with self._lock:
            project = self._project(workspace, project_id)
            if work_item_id in self._items:
                raise ValueError(f"work item {work_item_id} exists already")
            if state is None:
                state_id = next(s["id"] for s in project["states"] if s["default"])
            else:
                state_id = self._resolve_state(project_id, state)
            sequence = project["next_sequence"]
            project["next_sequence"] += 1
            now = now_iso()
            self._items[work_item_id] = {
                "id": work_item_id,
                "name": name,
                "state": state_id,
                "priority": "none",
                "sequence_id": sequence,
                "sort_order": 65535.0 + 10000 * (sequence - 1),
                "project": project_id,
                "workspace": project["workspace"],
                "description_html": "<p></p>",
                "created_at": now,
                "updated_at": now,
                "completed_at": now if self._states[state_id]["group"] == "completed" else None,
                "created_by": self.bot_user_id,
                "updated_by": None,
                "archived_at": None,
            }
            self._comments[work_item_id] = []
            self._links[work_item_id] = []
        return work_item_id

    def add_link(
        self, work_item_id: str, url: str, title: str | None = None, *, by: str | None = None
    ) -> dict:
        """Attach a link to a work item, by the bot unless `by` names someone else.

        The same URL twice on one work item is refused (ValueError), as Plane refuses it.
        """
        with self._lock:
            item = self._items[work_item_id]
            links = self._links[work_item_id]
            if any(link["url"] == url for link in links):
                raise ValueError(LINK_EXISTS)
            now = now_iso()
            link = {
                "id": str(uuid.uuid4()),
                "created_at": now,
                "updated_at": now,
                "deleted_at": None,
                "title": title,
                "url": url,
                "metadata": {},
                "created_by": by or self.bot_user_id,
                "updated_by": None,
                "project": item["project"],
                "workspace": item["workspace"],
                "issue": work_item_id,
            }
            links.insert(0, link)
            return dict(link)

    # -------------------------------------------------------------------------- a person's acts

    def set_state(self, work_item_id: str, state: str) -> None:
        """Move a work item as a person in Plane's web app would (no API request involved)."""
        with self._lock:
            item = self._items[work_item_id]
            new = self._resolve_state(item["project"], state)
            old = item["state"]
            if new == old:
                return
            self._apply_state(item, new)
            item["updated_at"] = now_iso()
            item["updated_by"] = HUMAN_USER_ID
            # The web app reports a state change as "state_id", the API as "state".
            activity = self._activity("state_id", old, new, _HUMAN_ACTOR)
            self._queue_webhooks("issue", "updated", self._webhook_item(item), [activity])

    def create_work_item_as_person(self, project_id: str, name: str, state: str) -> str:
        """Create a card as a person in the web app: Plane sends a "created" delivery."""
        with self._lock:
            workspace = self._projects[project_id]["workspace_slug"]
            work_item_id = self.add_work_item(workspace, project_id, name, state=state)
            item = self._items[work_item_id]
            item["created_by"] = item["updated_by"] = HUMAN_USER_ID
            activity = self._activity(None, None, None, _HUMAN_ACTOR)
            self._queue_webhooks("issue", "created", self._webhook_item(item), [activity])
        return work_item_id

    def delete_work_item(self, work_item_id: str) -> None:
        # Plane's community edition sends no webhook for a deletion, so neither does this.
        with self._lock:
            del self._items[work_item_id]
            self._comments.pop(work_item_id, None)
            self._links.pop(work_item_id, None)

    def archive_work_item(self, work_item_id: str) -> None:
        """Archive an item as Plane does: gone from the list and from GET (404), yet a PATCH
        of it still succeeds. No webhook, like a deletion."""
        with self._lock:
            self._items[work_item_id]["archived_at"] = now_iso()

    def touch_work_item(self, work_item_id: str, updated_at: datetime) -> None:
        """Set when the item last changed (tests age items to model a quiet board)."""
        with self._lock:
            self._items[work_item_id]["updated_at"] = updated_at.astimezone(UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ"
            )

    # ----------------------------------------------------------------------------- reading

    def states(self, project_id: str) -> list[dict]:
        with self._lock:
            return [dict(s) for s in self._projects[project_id]["states"]]

    def projects(self) -> list[dict]:
        with self._lock:
            return [dict(p, states=None) for p in self._projects.values()]

    def project(self, project_id: str) -> dict:
        with self._lock:
            return dict(self._projects[project_id], states=None)

    def work_items(self, project_id: str) -> list[dict]:
        """The project's work items (archived ones left out), in creation order."""
        with self._lock:
            return [
                dict(i)
                for i in self._items.values()
                if i["project"] == project_id and not i["archived_at"]
            ]

    def state_id(self, project_id: str, name: str) -> str:
        with self._lock:
            for state in self._projects[project_id]["states"]:
                if state["name"].casefold() == name.casefold():
                    return state["id"]
        raise KeyError(f"no state {name!r} in project {project_id}")

    def work_item(self, work_item_id: str) -> dict:
        with self._lock:
            return self._api_item(self._items[work_item_id])

    def comments(self, work_item_id: str) -> list[dict]:
        with self._lock:
            return [dict(c) for c in self._comments[work_item_id]]

    def links(self, work_item_id: str) -> list[dict]:
        """The work item's links, newest first (as Plane lists them)."""
        with self._lock:
            return [
                dict(link, metadata=dict(link["metadata"])) for link in self._links[work_item_id]
            ]

    def work_item_webhook_data(self, work_item_id: str) -> dict:
        with self._lock:
            return self._webhook_item(self._items[work_item_id])

    # ------------------------------------------------------------------------ representation

    def _project(self, workspace: str, project_id: str) -> dict[str, Any]:
        project = self._projects.get(project_id)
        if project is None or project["workspace_slug"] != workspace:
            raise KeyError(f"no project {project_id} in workspace {workspace}")
        return project

    def _resolve_state(self, project_id: str, state: str) -> str:
        if state in self._states and self._states[state]["project"] == project_id:
            return state
        return self.state_id(project_id, state)

    def _apply_state(self, item: dict[str, Any], state_id: str) -> None:
        item["state"] = state_id
        completed = self._states[state_id]["group"] == "completed"
        item["completed_at"] = (item["completed_at"] or now_iso()) if completed else None

    def _api_project(self, project: dict[str, Any]) -> dict[str, Any]:
        # The fields of Plane's ProjectSerializer the service and tests may read.
        return {
            "id": project["id"],
            "identifier": project["identifier"],
            "name": project["name"],
            "description": "",
            "network": 2,
            "workspace": project["workspace"],
            "archived_at": None,
            "created_at": project["created_at"],
            "updated_at": project["updated_at"],
            "created_by": self.bot_user_id,
            "updated_by": None,
        }

    def _api_item(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": item["id"],
            "name": item["name"],
            "state": item["state"],
            "priority": item["priority"],
            "sequence_id": item["sequence_id"],
            "project": item["project"],
            "workspace": item["workspace"],
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "labels": [],
            "assignees": [],
            "description_html": item["description_html"],
            "created_by": item["created_by"],
            "updated_by": item["updated_by"],
        }

    def _webhook_item(self, item: dict[str, Any]) -> dict[str, Any]:
        # Same keys in the same order as the `data` of a real Plane v1.3.1 issue delivery.
        state = self._states[item["state"]]
        return {
            "id": item["id"],
            "labels": [],
            "assignees": [],
            "state": {
                "id": state["id"],
                "name": state["name"],
                "color": state["color"],
                "group": state["group"],
            },
            "description": {},
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "deleted_at": None,
            "point": None,
            "name": item["name"],
            "description_json": {},
            "description_html": item["description_html"],
            "description_stripped": _strip_tags(item["description_html"]),
            "description_binary": None,
            "priority": item["priority"],
            "start_date": None,
            "target_date": None,
            "sequence_id": item["sequence_id"],
            "sort_order": item["sort_order"],
            "completed_at": item["completed_at"],
            "archived_at": item["archived_at"],
            "is_draft": False,
            "external_source": None,
            "external_id": None,
            "created_by": item["created_by"],
            "updated_by": item["updated_by"],
            "project": item["project"],
            "workspace": item["workspace"],
            "parent": None,
            "estimate_point": None,
            "type": None,
        }

    def _bot_actor(self) -> dict[str, Any]:
        return {"id": self.bot_user_id, **_BOT_ACTOR}

    @staticmethod
    def _activity(field: str | None, old: Any, new: Any, actor: dict[str, Any]) -> dict[str, Any]:
        # Key order as Plane sends it (new before old).
        return {
            "field": field,
            "new_value": new,
            "old_value": old,
            "actor": dict(actor),
            "old_identifier": None,
            "new_identifier": None,
        }


def seed_demo(standin: World) -> dict:
    """Workspace "demo", project DEMO (default + pipeline states), DEMO-1..5 in "Todo"."""
    project_id = standin.add_project(
        DEMO_WORKSPACE,
        project_id=DEMO_PROJECT_ID,
        identifier="DEMO",
        name="Demo",
        states=DEFAULT_STATES + PIPELINE_STATES,
    )
    work_items = [
        standin.add_work_item(
            DEMO_WORKSPACE, project_id, f"Demo item {n}", state="Todo", work_item_id=item_id
        )
        for n, item_id in enumerate(DEMO_WORK_ITEM_IDS, start=1)
    ]
    return {"workspace": DEMO_WORKSPACE, "project_id": project_id, "work_items": work_items}
