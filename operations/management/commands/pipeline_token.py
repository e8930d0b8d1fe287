from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

GROUP = "pipelines"


class Command(BaseCommand):
    help = (
        "Make (or reuse) a user in the `pipelines` group (view, create and drive tasks; never "
        "approve) and print its API token: the one line is the token, for CI's secret store. "
        "`--rotate` replaces the token."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the pipeline's user name, e.g. ci-shop")
        parser.add_argument(
            "--rotate", action="store_true", help="make a new token; the old one stops working"
        )

    def handle(self, *args, name, rotate, **options):
        group = Group.objects.filter(name=GROUP).first()
        if group is None:
            raise CommandError(f"no group {GROUP!r}: run `manage.py migrate` first")
        users = get_user_model()
        user, created = users.objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()  # a token only: no login to the admin
            user.save()
        elif user.is_superuser or user.is_staff:
            raise CommandError(
                f"{name!r} is an admin account: its token would not be scoped. "
                "Give the pipeline a name of its own."
            )
        user.groups.add(group)
        if rotate:
            Token.objects.filter(user=user).delete()
        token, made = Token.objects.get_or_create(user=user)
        told = "made" if created else "reused"
        # Said on stderr, so stdout is the token alone: TOKEN=$(manage.py pipeline_token ci)
        self.stderr.write(
            f"user {name!r} ({told}) in group {GROUP!r}: may view, create and drive tasks, "
            f"never approve; {'new' if made else 'its'} token:"
        )
        self.stdout.write(token.key)
