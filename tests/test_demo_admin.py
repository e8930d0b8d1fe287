from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def run() -> str:
    out = StringIO()
    call_command("ensure_demo_admin", stdout=out)
    return out.getvalue()


def test_it_creates_the_demo_admin_once_and_prints_its_token():
    first = run()
    assert "created superuser 'admin'" in first
    assert authenticate(username="admin", password="admin").is_superuser
    second = run()
    assert "created" not in second
    token = Token.objects.get(user__username="admin").key
    assert f"Authorization: Token {token}" in first
    assert f"Authorization: Token {token}" in second
    assert get_user_model().objects.count() == 1


def test_it_leaves_an_existing_account_and_its_password_alone(django_user_model):
    django_user_model.objects.create_user("admin", password="a-real-password")
    run()
    assert authenticate(username="admin", password="a-real-password") is not None
    assert authenticate(username="admin", password="admin") is None
