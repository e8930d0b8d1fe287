"""`manage.py ops`: the operator's decisions from a shell, for runbooks and incidents.

    ops status [--json]
    ops approve WORK_ITEM --reason TEXT [--as USER]
    ops abort WORK_ITEM --reason TEXT [--as USER]
    ops accept WORK_ITEM --reason TEXT [--as USER]
    ops retry-rollback WORK_ITEM --reason TEXT [--as USER]
    ops switch NAME on|off --reason TEXT [--as USER]

`ops status` prints the dashboard's verdict (`operations.verdict`): "All good", or the
problems worst first, or the set-up checklist on an install not set up yet. Its exit status
is 0 when all is good and 1 when not, so a script can wait on it.

WORK_ITEM is Plane's readable id (`DEMO-3`, any case) or the work item's UUID (or its first 8
or more characters). Each decision goes through the admin's own code (`pipeline.decisions`,
`monitoring.decisions`) and is recorded as the admin records it: in the task's history (or
the switchboard's change log) with the caller `ops:USER` and the reason, and in the admin's
log when USER is an account. Refused: a message on stderr and exit status 1.
"""

import getpass
import json

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from monitoring import decisions as window_decisions
from operations import verdict
from pipeline import decisions, engine, rollbacks, switchboard
from pipeline.models import Task
from pipeline.stages import DeployPhase, Stage


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for the uid (a container)
        return "unknown"


class Command(BaseCommand):
    help = (
        "The dashboard's verdict, and an operator's decisions from the shell: approve, abort "
        "or accept a work item's deploy, retry its failed rollback, or switch a kill-switch; "
        "each decision recorded with who and why, as the admin does."
    )

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

        def decision(name: str, help_text: str, target: str, target_help: str):
            sub = commands.add_parser(name, help=help_text, description=help_text)
            sub.add_argument(target, help=target_help)
            return sub

        status = commands.add_parser(
            "status",
            help="Is everything all right? Exit 0 when all is good, 1 when not.",
            description="The dashboard's verdict: problems worst first, or the set-up "
            "checklist. Exit status 0 when all is good, 1 when not.",
        )
        status.add_argument("--json", action="store_true", help="one JSON object")
        item_help = "the work item: DEMO-3 (any case), its UUID, or 8+ characters of it"
        subs = [
            decision("approve", "Approve a deploy that awaits approval.", "work_item", item_help),
            decision(
                "abort",
                "Abort a watched deploy's post-deploy window (no verdict), or a deploy that "
                "has not started (the task goes back to development).",
                "work_item",
                item_help,
            ),
            decision(
                "accept",
                "Accept a watched deploy as healthy (closes its window HEALTHY).",
                "work_item",
                item_help,
            ),
            decision(
                "retry-rollback",
                "Run a failed rollback's hook again (as the admin's Retry rollback does).",
                "work_item",
                item_help,
            ),
        ]
        switch = decision(
            "switch",
            "Turn a kill-switch on or off.",
            "name",
            "the kill-switch: "
            + ", ".join(s.removesuffix("_enabled") for s in decisions.KILL_SWITCHES),
        )
        switch.add_argument("state", choices=["on", "off"], help="on or off")
        for sub in [*subs, switch]:
            sub.add_argument("--reason", required=True, help="why: kept with the decision")
            sub.add_argument(
                "--as",
                dest="as_user",
                default=None,
                metavar="USER",
                help="who decides (default: the operating system's user)",
            )

    def handle(self, *args, command, **options):
        if command == "status":
            return self.status(as_json=options["json"])
        self.decide(command, **options)

    def decide(self, command, *, reason, as_user, **options):
        if not reason.strip():
            raise CommandError("--reason must say why")
        self.user = (as_user or os_user()).strip()
        self.who = f"ops:{self.user}"
        if command == "switch":
            return self.switch(options["name"], options["state"] == "on", reason)
        task = self.find(options["work_item"])
        getattr(self, command.replace("-", "_"))(task, reason)

    # --- the verdict ------------------------------------------------------------------------

    def status(self, *, as_json: bool) -> None:
        set_up = verdict.is_set_up()
        found = verdict.problems()
        checklist = verdict.setup_checklist()
        good = set_up and not found
        if as_json:
            self.stdout.write(
                json.dumps(
                    {
                        "ok": good,
                        "set_up": set_up,
                        "problems": [
                            {"severity": p.severity, "key": p.key, "text": p.text} for p in found
                        ],
                        "checklist": [
                            {"key": i.key, "text": i.text, "done": i.done} for i in checklist
                        ],
                    }
                )
            )
        elif not set_up:
            self.stdout.write("Not set up yet:")
            for item in checklist:
                self.stdout.write(f"  [{'x' if item.done else ' '}] {item.text}")
        elif good:
            self.stdout.write("All good")
        else:
            self.stdout.write(f"{len(found)} problem{'s' if len(found) != 1 else ''}:")
            for problem in found:
                self.stdout.write(f"  {problem.severity.upper():5} {problem.text}")
        if not good:
            raise SystemExit(1)

    # --- decisions --------------------------------------------------------------------------

    def approve(self, task: Task, reason: str) -> None:
        was_approved = task.deploy_approved_at is not None
        why_not = decisions.approve(task, who=self.who, reason=reason)
        if why_not:
            raise CommandError(f"{task}: not approved: {why_not}")
        if was_approved:
            self.stdout.write(f"{task}: the deploy was approved already; nothing changed")
            return
        self.log(task, "Approved the deploy.")
        self.stdout.write(f"{task}: deploy approved by {self.who}")

    def abort(self, task: Task, reason: str) -> None:
        window = window_decisions.active_window(task)
        if window is not None:
            if not window_decisions.abort_window(window, who=self.who, reason=reason):
                raise CommandError(f"{task}: the window is no longer active")
            self.log(window, f"Aborted the window (no verdict): {reason}")
            self.stdout.write(f"{task}: post-deploy window aborted by {self.who}")
            return
        waiting = task.stage == Stage.DEPLOY and task.deploy_phase in (
            DeployPhase.NONE,
            DeployPhase.AWAITING_APPROVAL,
        )
        why_not = decisions.abort(task, who=self.who, reason=reason)
        if why_not:
            raise CommandError(f"{task}: nothing to abort: {why_not}" if not waiting else why_not)
        self.log(task, f"Aborted the deploy: back to development ({reason}).")
        self.stdout.write(f"{task}: deploy aborted by {self.who}: back to development")

    def accept(self, task: Task, reason: str) -> None:
        window = window_decisions.active_window(task)
        if window is None:
            raise CommandError(f"{task}: no deploy is being watched: nothing to accept")
        if not window_decisions.accept_window(window, who=self.who, reason=reason):
            raise CommandError(f"{task}: the window is no longer active")
        self.log(window, f"Accepted the deploy as healthy: {reason}")
        self.stdout.write(f"{task}: deploy accepted as healthy by {self.who}")

    def retry_rollback(self, task: Task, reason: str) -> None:
        try:
            rollbacks.retry_rollback(task, caller=self.who, reason=reason)
        except engine.TransitionRefused as refused:
            raise CommandError(f"{task}: not retried: {refused.reason}") from None
        self.log(task, f"Retried the rollback: {reason}")
        self.stdout.write(f"{task}: rollback queued again by {self.who}")

    def switch(self, name: str, on: bool, reason: str) -> None:
        try:
            field = decisions.kill_switch(name)
            changed = decisions.switch(field, on, who=self.who, reason=reason)
        except ValueError as refused:
            raise CommandError(str(refused)) from None
        state = "on" if on else "off"
        if changed:
            self.stdout.write(f"{field}: switched {state} by {self.who}")
        else:
            self.stdout.write(f"{field}: {state} already; nothing changed")
        lists = {
            "post_deploy_enabled": ["post_deploy_repos"],
            "deploy_status_guard_enabled": ["deploy_status_guard_repos"],
        }.get(field, [])
        if on:
            for warning in switchboard.repo_list_warnings(switchboard.get(), lists):
                self.stderr.write(f"warning: {warning}: it watches nothing yet")

    # --- helpers ----------------------------------------------------------------------------

    def find(self, text: str) -> Task:
        tasks = list(Task.objects.named(text)[:6])
        if not tasks:
            raise CommandError(
                f"no task for {text!r}: give Plane's id (DEMO-3) or the work item's UUID"
            )
        if len(tasks) > 1:
            named = ", ".join(f"{t.work_item_id} ({t.label})" for t in tasks[:5])
            raise CommandError(f"{text!r} names more than one task: {named}")
        return tasks[0]

    def log(self, obj, message: str) -> None:
        """The admin's log entry, when the operator is an account (it needs a user)."""
        user = get_user_model().objects.filter(username=self.user).first()
        if user is None:
            return
        LogEntry.objects.log_actions(
            user.pk, [obj], CHANGE, change_message=message, single_object=True
        )
