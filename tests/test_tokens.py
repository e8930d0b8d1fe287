"""Groups with the right permissions, and `manage.py pipeline_token NAME` for CI."""

import subprocess
import sys
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.conftest import PROJECT, make_user
from tests.processes import ROOT, child_env

pytestmark = pytest.mark.django_db


def perms(group: str) -> set[str]:
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in Group.objects.get(name=group).permissions.select_related("content_type")
    }


def test_the_migration_makes_operators_who_approve_and_pipelines_who_never_do():
    assert {"pipeline.view_task", "pipeline.change_task", "pipeline.approve_deploy"} <= perms(
        "operators"
    )
    assert "monitoring.change_monitorwindow" in perms("operators")
    assert perms("pipelines") == {
        "pipeline.view_task",
        "pipeline.add_task",
        "pipeline.change_task",
    }


def token(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("pipeline_token", *args, stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_pipeline_token_makes_a_scoped_user_and_prints_only_its_token(client):
    key, said = token("ci-shop")
    assert len(key) == 40 and "\n" not in key
    assert "'ci-shop' (made) in group 'pipelines'" in said
    user = get_user_model().objects.get(username="ci-shop")
    assert not user.has_usable_password() and not user.is_staff
    assert token("ci-shop")[0] == key  # reused
    rotated, _ = token("ci-shop", "--rotate")
    assert rotated != key

    client.defaults["HTTP_AUTHORIZATION"] = f"Token {rotated}"
    work_item = "0de00000-0000-4000-8000-0000000000a3"
    made = client.post(
        "/api/tasks/",
        {"work_item_id": work_item, "project_id": PROJECT, "title": "x", "repo": "shop"},
        content_type="application/json",
    )
    assert made.status_code == 201
    for stage in ("development", "code_review", "deploy"):
        url = f"/api/tasks/{work_item}/advance/"
        moved = client.post(url, {"stage": stage}, content_type="application/json")
        assert moved.status_code == 200
    client.post(f"/api/tasks/{work_item}/deploy/request-approval/")
    refused = client.post(f"/api/tasks/{work_item}/deploy/approve/")
    assert refused.status_code == 403
    assert "pipeline.approve_deploy" in refused.json()["detail"]


def test_pipeline_token_refuses_to_scope_an_admin_account():
    make_user("admin", superuser=True)
    with pytest.raises(CommandError, match="admin account"):
        token("admin")


@pytest.mark.skipif(connection.vendor != "sqlite", reason="runs on its own SQLite file")
def test_pipeline_token_as_a_command_line_prints_one_line(tmp_path):
    env = child_env(tmp_path, DJANGO_SECRET_KEY="token-test-secret-key")
    run = {"cwd": ROOT, "env": env, "capture_output": True, "text": True, "timeout": 120}
    assert (
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], **run).returncode == 0
    )
    made = subprocess.run([sys.executable, "manage.py", "pipeline_token", "ci"], **run)
    assert made.returncode == 0, made.stderr
    assert len(made.stdout.splitlines()) == 1 and len(made.stdout.strip()) == 40
