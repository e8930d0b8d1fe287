from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def local_demo(settings):
    settings.DEBUG = True
    settings.PLANE_API_URL = ""


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
    monkeypatch.setattr(dev, "demo_leftovers", lambda: "")
    monkeypatch.setenv("PLANE_API_URL", plane_url)
    dev.prepare(demo=not dev.plane_configured())
    assert ("ensure_demo_admin" in ran) is demo
    assert ("demo mode" in capsys.readouterr().out) is demo
    assert {"migrate", "collectstatic", "setup_schedules"} <= set(ran)


@pytest.mark.parametrize(
    "debug,plane_key", [(False, ""), (True, "plane_api_real"), (False, "plane_api_standin")]
)
def test_it_refuses_outside_a_local_demo(settings, debug, plane_key):
    from django.core.management import CommandError

    settings.DEBUG = debug
    if plane_key:
        settings.PLANE_API_URL, settings.PLANE_API_KEY = "https://plane.example.com", plane_key
    with pytest.raises(CommandError, match="pipeline_token NAME"):
        run()
    assert get_user_model().objects.count() == 0


def test_remove_demo_removes_the_demo_account_and_project_only():
    from plane_integration.models import PlaneProject

    run()
    PlaneProject.objects.create(
        project_id="0de00000-0000-4000-8000-000000000001", workspace_slug="demo", repo="demo"
    )
    get_user_model().objects.create_user("alice", password="a-real-password")
    with pytest.raises(Exception, match="demo account admin/admin, the demo project"):
        call_command("remove_demo", "--check", stdout=StringIO())
    call_command("remove_demo", stdout=StringIO())
    assert list(get_user_model().objects.values_list("username", flat=True)) == ["alice"]
    assert not PlaneProject.objects.exists()
    call_command("remove_demo", "--check", stdout=StringIO())  # nothing left: no error


def test_dev_token_creates_no_account_with_a_real_plane(monkeypatch, tmp_path, capsys):
    import dev

    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setenv("PLANE_API_URL", "https://plane.example.com")
    monkeypatch.setattr(dev, "ensure_environment", lambda extra: pytest.fail("no install"))
    assert dev.token() == 1
    assert "manage.py pipeline_token NAME" in capsys.readouterr().err


def test_dev_up_with_a_real_plane_refuses_to_start_while_demo_leftovers_remain(
    monkeypatch, tmp_path
):
    import dev

    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "manage", lambda *args, **kwargs: None)
    left = "CommandError: demo leftovers: the demo account admin/admin"
    monkeypatch.setattr(dev, "demo_leftovers", lambda: left)
    with pytest.raises(SystemExit) as stopped:
        dev.prepare(demo=False)
    assert "demo account" in str(stopped.value)
    assert "manage.py remove_demo" in str(stopped.value)
