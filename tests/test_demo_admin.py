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


@pytest.mark.parametrize("plane_url,demo", [("", True), ("https://plane.example.com", False)])
def test_dev_up_creates_the_demo_admin_only_without_a_real_plane(
    monkeypatch, tmp_path, capsys, plane_url, demo
):
    import dev

    ran = []
    monkeypatch.setattr(dev, "ROOT", tmp_path)  # no .env here: only the environment counts
    monkeypatch.setattr(dev, "manage", lambda *args, **kwargs: ran.append(args[0]))
    monkeypatch.setenv("PLANE_API_URL", plane_url)
    dev.prepare(demo=not dev.plane_configured())
    assert ("ensure_demo_admin" in ran) is demo
    assert ("demo mode" in capsys.readouterr().out) is demo
    assert {"migrate", "collectstatic", "setup_schedules"} <= set(ran)
