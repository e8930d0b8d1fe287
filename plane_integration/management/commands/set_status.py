from django.core.management.base import BaseCommand, CommandError

from plane_integration import guard, setters
from plane_integration.models import GuardVerdict


class Command(BaseCommand):
    help = (
        "Show a deploy status on a work item now, as a caller outside the pipeline would (a CI "
        "job, a script): it passes the deploy status guard first. For trying the guard; the "
        "board sync needs no help."
    )

    def add_arguments(self, parser):
        parser.add_argument("work_item_id")
        parser.add_argument("key", choices=sorted(guard.GUARDED_KEYS), help="the status key")
        parser.add_argument("--caller", required=True, help="who asks (recorded)")
        parser.add_argument("--reason", default="")

    def handle(self, *args, work_item_id, key, caller, reason, **options):
        before = GuardVerdict.objects.order_by("-id").values_list("id", flat=True).first() or 0
        setter = setters.SETTERS[key]
        outcome = setter(work_item_id, caller=caller, reason=reason)
        verdict = GuardVerdict.objects.filter(id__gt=before, work_item_id=work_item_id).first()
        if verdict:
            self.stdout.write(f"guard: {verdict.verdict} ({verdict.reason})")
        if outcome.result == setters.Result.FAILED:
            raise CommandError(f"not sent: {outcome.why or 'the status was not shown'}")
        self.stdout.write(told(key, outcome))


def told(key: str, outcome: setters.SetOutcome) -> str:
    """What went to Plane, in words: the guard may have sent another status than `key`
    (CONVERGE_DONE shows the finished task's), or nothing at all."""
    shown = outcome.key
    instead = f" (the guard sent {shown} instead of {key})" if shown != key else ""
    if outcome.result == setters.Result.SENT:
        return f"sent: the work item shows {shown} now{instead}"
    if outcome.result == setters.Result.ALREADY_SHOWN:
        return f"nothing sent: the work item already shows {shown}{instead}"
    return f"nothing sent: {outcome.why or outcome.result}"
