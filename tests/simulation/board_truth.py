"""The board-truth simulation: everything that can go wrong at once, and what the board
shows afterwards.

A seeded random schedule drives the real code paths (the DRF API, the guarded setters,
the webhook endpoint, the q cluster's own worker functions, the monitor, the reconciler)
against the Plane stand-in on loopback, in one process on a fresh database. Time is
scaled down: Plane's rate window, the monitor's windows and ticks, timeouts and backoffs
are fractions of a second, so a run of thousands of events takes seconds. `run` returns
the figures; `tests/benchmarks/board_truth.py` is the command line.

Django must be set up first, with the settings `environment` returns.
"""

import json
import random
import time
from dataclasses import dataclass, field

# Seconds of the scaled time base. Plane's window is a minute; here it is RATE_WINDOW.
RATE_WINDOW = 1.0
RATE_LIMIT = 60
PROBE_TIMEOUT = 0.15
READ_TIMEOUT = 0.3
MONITOR_WINDOW_MINUTES = 0.01  # 0.6 s
WEBHOOK_SECRET = "board-truth-secret"
PLANE_KEY = "plane_api_board_truth"
REPOS = ("healthy", "failing", "hanging", "silent")  # silent: its health URL never connects
FINISHED = ("done", "cancelled")


def environment(standin_url: str) -> dict[str, str]:
    """Stageboard's settings for a run: the scaled time base and the stand-in."""
    from plane_standin.server import BOT_USER_ID

    return {
        "PLANE_API_URL": standin_url,
        "PLANE_API_KEY": PLANE_KEY,
        "PLANE_API_PATHS": "work-items",
        "PLANE_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "PLANE_RATE_WINDOW_SECONDS": str(RATE_WINDOW),
        "PLANE_CONNECT_TIMEOUT": "0.5",
        "PLANE_READ_TIMEOUT": str(READ_TIMEOUT),
        "PLANE_RETRIES": "1",
        "PLANE_RETRY_BACKOFF": "0.01",
        "PLANE_SYNC_RETRY_SECONDS": "0.05",
        "PLANE_STATES_REFRESH_SECONDS": "0.5",
        "PLANE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PLANE_BOT_USER_ID": BOT_USER_ID,
        # A queued sync or tick runs for half of this at most; retry must exceed it.
        "Q_TIMEOUT": "2",
        "Q_RETRY": "3",
        "ORCH_DEPLOY_STATUS_GUARD_REPOS": ",".join(REPOS),
        "ORCH_POST_DEPLOY_REPOS": ",".join(REPOS),
        "ORCH_POST_DEPLOY_WINDOW_MINUTES": str(MONITOR_WINDOW_MINUTES),
        "ORCH_POST_DEPLOY_TICK_SECONDS": "0.1",
        "ORCH_POST_DEPLOY_FAIL_THRESHOLD": "2",
        "ORCH_POST_DEPLOY_MIN_SAMPLES": "2",
        "ORCH_POST_DEPLOY_PROBE_TIMEOUT": str(PROBE_TIMEOUT),
        "ORCH_RECONCILE_ENABLED": "0",  # the simulation runs its sweeps itself
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
    }


@dataclass
class Figures:
    seed: int
    tasks: int
    events: int
    flaps: int = 0
    board_equals_truth_pct: float = 0.0
    lost_updates: int = 0
    plane_calls: int = 0
    rate_limited: int = 0
    wall_seconds: float = 0.0
    # Printed, not in the JSON line (the issue names its keys exactly).
    detail: dict = field(default_factory=dict)

    def json(self) -> str:
        keys = [
            "seed",
            "tasks",
            "events",
            "flaps",
            "board_equals_truth_pct",
            "lost_updates",
            "plane_calls",
            "rate_limited",
            "wall_seconds",
        ]
        return json.dumps({k: getattr(self, k) for k in keys})


class Simulation:
    def __init__(self, standin, *, seed: int, tasks: int, events: int, guard: bool) -> None:
        from django.test import Client

        from tests.simulation.loopback import HealthEndpoint, WebhookRelay

        self.standin = standin
        self.rng = random.Random(seed)
        self.figures = Figures(seed=seed, tasks=tasks, events=events)
        self.n_tasks, self.n_events, self.guard = tasks, events, guard
        self.relay = WebhookRelay().start()
        self.health = HealthEndpoint(silence=3 * PROBE_TIMEOUT).start()
        self.http = Client(HTTP_HOST="127.0.0.1")
        self.counts: dict[str, int] = {}
        self.log_seen = 0
        self.deleted: set[str] = set()
        self.items: list[str] = []

    # ------------------------------------------------------------------------------ set-up

    def set_up(self) -> None:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Permission
        from django_q.conf import Conf
        from rest_framework.authtoken.models import Token

        from monitoring.models import MonitoredRepo
        from pipeline import switchboard
        from plane_integration import drain
        from plane_integration.models import PlaneProject
        from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES

        # The in-process cluster (tests/qcluster.py) takes what is queued in one pass, and
        # an empty poll (a task locked by a retry) must not sleep half a second of our time.
        Conf.BULK, Conf.POLL = 100, 0.01
        # A drain that lets a batch gather would wait a quarter second of our time per
        # delivery step: the webhooks here arrive all at once, when a step delivers them.
        drain.FILL_SECONDS = 0
        users = get_user_model()
        ci = users.objects.create_user("ci")
        ci.user_permissions.add(
            *Permission.objects.filter(
                content_type__app_label="pipeline",
                codename__in=("view_task", "add_task", "change_task"),
            )
        )
        operator = users.objects.create_superuser("operator", password="unused")
        self.ci_token = Token.objects.create(user=ci).key
        self.ops_token = Token.objects.create(user=operator).key
        switchboard.update("board-truth", deploy_status_guard_enabled=self.guard)

        self.project = self.standin.add_project("sim", states=DEFAULT_STATES + PIPELINE_STATES)
        PlaneProject.objects.create(project_id=self.project, workspace_slug="sim", repo="sim")
        self.standin.register_webhook(f"{self.relay.url}/webhooks/plane/", WEBHOOK_SECRET)
        for repo in REPOS:
            self.health.modes[repo] = repo if repo != "silent" else "healthy"
            url = f"{self.health.url}/{repo}" if repo != "silent" else "http://127.0.0.1:9/"
            MonitoredRepo.objects.create(name=repo, health_url=url, rollback_command=["true"])
        self.state_names = {s["id"]: s["name"] for s in self.standin.states(self.project)}
        for n in range(self.n_tasks):
            item = self.standin.add_work_item("sim", self.project, f"sim {n}", state="Todo")
            self.items.append(item)
            self.api(
                "post",
                "/api/tasks/",
                {
                    "work_item_id": item,
                    "project_id": self.project,
                    "title": f"sim {n}",
                    "repo": self.rng.choice(REPOS),
                },
            )
        self.log_seen = len(self.standin.requests)
        self.step_began = time.time()

    # ------------------------------------------------------------------------------- run

    def run(self) -> Figures:
        started = time.monotonic()
        self.set_up()
        outage_at = self.n_events * 2 // 5
        timeouts_at = outage_at + self.n_events // 20
        burst_at = self.n_events * 7 // 10
        steps = (
            (40, self.step_pipeline),
            (8, self.step_stale_caller),
            (6, self.step_person_moves),
            (8, self.step_deliver_webhooks),
            (20, self.step_background),
            (2, self.step_health_changes),
            (1, self.step_delete),
            (2, self.step_reconcile),
        )
        weights = [w for w, _ in steps]
        for n in range(self.n_events):
            if n == outage_at:
                self.step_outage(500)
            elif n == timeouts_at:
                self.step_outage(None)
            elif n == burst_at:
                self.step_burst()
            else:
                self.rng.choices(steps, weights)[0][1]()
            self.count_flaps()
        self.finish()
        self.measure()
        self.figures.wall_seconds = round(time.monotonic() - started, 2)
        self.figures.detail = dict(sorted(self.counts.items()))
        self.relay.stop()
        self.health.stop()
        return self.figures

    def tally(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def api(self, method: str, path: str, data: dict | None = None, *, token: str = ""):
        return getattr(self.http, method)(
            path,
            data=json.dumps(data or {}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Token {token or self.ci_token}",
        )

    def task(self, item: str):
        from pipeline.models import Task

        return Task.objects.for_work_item(item)

    # ----------------------------------------------------------------------------- steps

    def step_pipeline(self) -> None:
        """The pipeline's API calls: the next legal move of a random task."""
        item = self.rng.choice(self.items)
        task = self.task(item)
        if task is None or task.stage in FINISHED:
            return self.tally("pipeline: nothing to do")
        base = f"/api/tasks/{item}/"
        roll = self.rng.random()
        if roll < 0.02:
            move = ("advance/", {"stage": "cancelled"}, "")
        elif task.stage == "analysis":
            move = ("advance/", {"stage": "development"}, "")
        elif task.stage == "development":
            move = ("advance/", {"stage": "code_review"}, "")
        elif task.stage == "code_review":
            back = roll < 0.15
            move = ("advance/", {"stage": "development" if back else "deploy"}, "")
        elif not task.deploy_phase:
            move = ("deploy/request-approval/", {}, "")
        elif task.deploy_phase == "awaiting_approval" and not task.deploy_approved_at:
            move = ("deploy/approve/", {}, self.ops_token)
        elif task.deploy_phase == "awaiting_approval":
            sha = f"{self.rng.getrandbits(160):040x}"
            move = ("deploy/start/", {"commit_sha": sha, "ref": "main"}, "")
        else:  # deploying
            move = ("deploy/fail/" if roll < 0.15 else "deploy/succeed/", {}, "")
        path, data, token = move
        answer = self.api("post", base + path, data, token=token)
        assert answer.status_code in (200, 409), (path, answer.status_code, answer.content)
        self.tally(f"pipeline: {answer.status_code}")

    def step_stale_caller(self) -> None:
        """A stale or duplicate caller re-sends a deploy-phase status after the task finished
        (the race the guard is for): through the guarded setters, as a CI job would."""
        from pipeline.models import Task
        from plane_integration import setters

        finished = list(
            Task.objects.filter(stage__in=FINISHED).values_list("work_item_id", flat=True)
        )
        if not finished:
            return self.tally("stale caller: no finished task")
        item = str(self.rng.choice(finished))
        setter = self.rng.choice(
            (setters.set_issue_awaiting_deploy, setters.set_issue_deploying)
            + (setters.set_issue_monitoring,)
        )
        setter(item, caller=self.rng.choice(("ci-retry", "ci-duplicate")), reason="stale")
        self.tally("stale caller")

    def step_person_moves(self) -> None:
        item = self.rng.choice(self.live_items())
        roll = self.rng.random()
        if roll < 0.25:
            target = "To Analyse"
        elif roll < 0.4:
            target = "Cancelled"
        else:
            target = self.rng.choice(list(self.state_names.values()))
        self.standin.set_state(item, target)
        self.tally(f"person moves to {target}")

    def step_deliver_webhooks(self) -> None:
        """What Plane sent so far reaches Stageboard: some lost, some twice, out of order."""
        from tests.qcluster import run_queued_tasks

        self.standin.flush_webhooks()
        held = self.relay.take()
        if len(held) > 1 and self.rng.random() < 0.5:
            i, j = sorted(self.rng.sample(range(len(held)), 2))
            held[i], held[j] = held[j], held[i]
            self.tally("webhooks out of order")
        for headers, body in held:
            roll = self.rng.random()
            if roll < 0.1:
                self.tally("webhook lost")
                continue
            for _ in range(2 if roll > 0.9 else 1):
                self.post_webhook(headers, body)
        run_queued_tasks()

    def post_webhook(self, headers: dict[str, str], body: bytes) -> None:
        meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}
        answer = self.http.post(
            "/webhooks/plane/", data=body, content_type="application/json", **meta
        )
        assert answer.status_code < 500, answer.content
        self.tally(f"webhook {answer.status_code}")

    def step_background(self) -> None:
        """The q cluster's turn: what is queued, the board sync and the monitor's tick."""
        from monitoring.ticks import monitor_tick
        from plane_integration.sync import sync_board
        from tests.qcluster import run_queued_tasks

        run_queued_tasks()
        monitor_tick(max_seconds=0)
        sync_board(max_seconds=0.2)
        self.tally("background")

    def step_health_changes(self) -> None:
        repo = self.rng.choice(("healthy", "failing", "hanging"))
        self.health.modes[repo] = self.rng.choice(("healthy", "failing", "hanging"))
        self.tally("health endpoint changes")

    def step_delete(self) -> None:
        live = self.live_items()
        if len(live) <= self.n_tasks // 2:
            return
        item = self.rng.choice(live)
        self.standin.delete_work_item(item)
        self.deleted.add(item)
        self.tally("work item deleted")

    def step_reconcile(self) -> None:
        from plane_integration.reconcile import reconcile

        reconcile(full=False, trigger="simulation")
        self.tally("incremental sweep")

    def step_outage(self, status: int | None) -> None:
        """Plane fails for a while: 500s, then answers that come too late (timeouts)."""
        if status is None:
            self.standin.delay_for(2 * RATE_WINDOW, 2 * READ_TIMEOUT)
            self.tally("outage: timeouts")
        else:
            self.standin.fail_for(2 * RATE_WINDOW, status)
            self.tally("outage: 500s")

    def step_burst(self) -> None:
        """Many tasks change at once: more sends than Plane's window takes."""
        for _ in range(2 * RATE_LIMIT):
            self.step_pipeline()
        self.step_background()
        self.tally("burst")

    def live_items(self) -> list[str]:
        return [i for i in self.items if i not in self.deleted]

    # ---------------------------------------------------------------------------- figures

    def count_flaps(self) -> None:
        """A flap: Plane accepted a change (a PATCH) that shows a non-final status on the
        work item of a task that was finished (done with its window closed, or cancelled)
        before the step began and still is. People's own moves are not ours to count."""
        new = self.standin.requests_since(self.log_seen)
        self.log_seen += len(new)
        patches = [r for r in new if r.method == "PATCH" and r.status == 200]
        if not patches:
            self.step_began = time.time()
            return
        for request in patches:
            state = json.loads(request.body).get("state")
            item = request.path.rstrip("/").rsplit("/", 1)[-1]
            if self.finished_since(item, self.step_began) and not self.final(item, state):
                self.figures.flaps += 1
        self.step_began = time.time()

    def finished_since(self, item: str, since: float) -> bool:
        from monitoring.models import MonitorWindow

        task = self.task(item)
        if task is None or task.stage not in FINISHED or task.updated_at.timestamp() >= since:
            return False
        window = MonitorWindow.objects.filter(task=task, cycle=task.cycle).first()
        if window is None or task.stage == "cancelled":
            return True
        return window.state != MonitorWindow.State.ACTIVE and (
            window.closed_at is not None and window.closed_at.timestamp() < since
        )

    def final(self, item: str, state_id: str) -> bool:
        name = self.state_names.get(state_id, "")
        task = self.task(item)
        return name in (("Cancelled",) if task.stage == "cancelled" else ("Done", "Blocked"))

    def finish(self) -> None:
        """Plane recovers; every window closes; one full sweep; the sync until nothing is due."""
        from monitoring.models import MonitorWindow
        from monitoring.ticks import monitor_tick
        from plane_integration.models import BoardStatus
        from plane_integration.reconcile import reconcile
        from plane_integration.sync import sync_board
        from tests.qcluster import run_queued_tasks

        self.standin.fail_for(0)
        self.standin.delay_for(0, 0)
        while MonitorWindow.objects.filter(state=MonitorWindow.State.ACTIVE).exists():
            monitor_tick(max_seconds=0)
            time.sleep(0.05)
            self.count_flaps()
        for turn in range(3):  # everything Plane still had to say, delivered this time
            if turn == 2:  # once people's last moves are in: the operator's turn
                self.operator_moves_back()
            run_queued_tasks()
            self.standin.flush_webhooks()
            for headers, body in self.relay.take():
                self.post_webhook(headers, body)
            run_queued_tasks()
            self.count_flaps()
        for _ in range(100):
            run = reconcile(full=True, trigger="simulation")
            run_queued_tasks()
            self.count_flaps()
            if run.complete:
                break
        self.counts["final sweep repairs"] = run.repair_count
        due = BoardStatus.objects.filter(next_attempt_at__isnull=False, gone_at__isnull=True)
        for _ in range(200):
            sync_board(max_seconds=2 * RATE_WINDOW)
            run_queued_tasks()
            self.count_flaps()
            if not due.exists():
                break
            time.sleep(0.05)  # a row in backoff

    def operator_moves_back(self) -> None:
        """Items a person kept moving are left to the operator (the dashboard's
        person_drift): the operator does what it says and moves each back in Plane."""
        from plane_integration import statuses
        from plane_integration.models import BoardStatus, PlaneProject
        from plane_integration.states import cached_states

        project = PlaneProject.objects.get(project_id=self.project)
        resolved = statuses.resolution_map(cached_states(project), project.status_names)
        left = BoardStatus.objects.filter(drift_left_at__isnull=False, gone_at__isnull=True)
        for row in left.select_related("task"):
            item = str(row.task.work_item_id)
            if item in self.deleted:
                continue
            self.standin.set_state(item, resolved[row.desired_key])
            self.tally("left to the operator, moved back")

    def measure(self) -> None:
        from pipeline.models import Task
        from plane_integration import board, statuses
        from plane_integration.models import BoardStatus, PlaneProject
        from plane_integration.states import cached_states

        project = PlaneProject.objects.get(project_id=self.project)
        resolved = statuses.resolution_map(cached_states(project), project.status_names)
        right = counted = lost = 0
        for task in Task.objects.select_related("board"):
            item = str(task.work_item_id)
            if item in self.deleted:
                continue
            counted += 1
            shown = self.standin.work_item(item)["state"]
            right += shown == resolved[board.truth_key(task)]
            row = getattr(task, "board", None)
            if (
                row is None
                or row.synced_version < row.desired_version
                or shown != resolved[row.desired_key]
            ):
                lost += 1
        requests = self.standin.requests
        self.figures.board_equals_truth_pct = round(100 * right / max(1, counted), 2)
        self.figures.lost_updates = lost
        self.figures.plane_calls = len(requests)
        self.figures.rate_limited = sum(r.status == 429 for r in requests)
        stages: dict[str, int] = {}
        for stage in Task.objects.values_list("stage", flat=True):
            stages[stage] = stages.get(stage, 0) + 1
        self.counts["final stages"] = stages
        self.counts["items deleted"] = len(self.deleted)
        self.counts["board rows gone"] = BoardStatus.objects.filter(gone_at__isnull=False).count()
