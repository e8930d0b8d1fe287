from django.core.management.base import BaseCommand

from monitoring.ticks import monitor_tick


class Command(BaseCommand):
    help = "Run one pass of the post-deploy monitor now: tick every due window."

    def handle(self, *args, **options):
        report = monitor_tick(max_seconds=0)
        self.stdout.write(
            f"ticked {report['ticked']} window(s): {report['verdicts']} verdict(s), "
            f"{report['aborted']} aborted"
        )
