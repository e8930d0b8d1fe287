from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from operations import demo


class Command(BaseCommand):
    help = (
        "For a local demo: create the superuser `admin` (password `admin`) unless a user of "
        "that name exists, and print its API token. Never run this on a shared deployment."
    )

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")

    def handle(self, *args, username, password, **options):
        if not (demo.demo_mode() and settings.DEBUG):
            raise CommandError(
                "refused: the demo account is only for a local demo (no real Plane configured "
                "and DJANGO_DEBUG on). Make a scoped API token instead: "
                "manage.py pipeline_token NAME"
            )
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            user = users.objects.create_superuser(username, password=password)
            self.stdout.write(f"created superuser {username!r} with password {password!r}")
        token, _ = Token.objects.get_or_create(user=user)
        self.stdout.write(f"admin login: {username}; API token: Authorization: Token {token.key}")
        # A line to paste into a shell as it is (the README's curl examples use $TOKEN).
        self.stdout.write(f"TOKEN={token.key}")
