from django.core.management.base import BaseCommand, CommandError

from operations import demo
from plane_integration.models import PlaneProject


class Command(BaseCommand):
    help = (
        "Remove what the local demo left (the account admin/admin, the stand-in's demo "
        "project); with --check, only say what is left and exit 1 if anything is."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true")

    def handle(self, *args, check, **options):
        found = demo.leftovers()
        if check:
            if found:
                raise CommandError(f"demo leftovers: {', '.join(found)}")
            self.stdout.write("no demo leftovers")
            return
        account = demo.demo_account()
        if account is not None:
            account.delete()
        PlaneProject.objects.filter(project_id=demo.DEMO_PROJECT_ID).delete()
        self.stdout.write(f"removed: {', '.join(found)}" if found else "no demo leftovers")
