from django.core.management.base import BaseCommand

from pipeline.scheduling import sync_schedules


class Command(BaseCommand):
    help = "Create or update the background schedules the code declares (idempotent)."

    def handle(self, *args, **options):
        report = sync_schedules()
        for verb in ("created", "updated", "deleted", "unchanged"):
            for name in getattr(report, verb):
                self.stdout.write(f"{verb:9} {name}")
        self.stdout.write(
            self.style.SUCCESS(
                f"schedules: {len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.deleted)} deleted, {len(report.unchanged)} unchanged"
            )
        )
