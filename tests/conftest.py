import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from rest_framework.authtoken.models import Token

from pipeline.models import Task

WORK_ITEM = "965752bc-110f-44c5-b119-4cd9510d58eb"
PROJECT = "ab63de3a-de3c-4684-b251-d1920ce5807d"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def ask_the_cache_every_time(monkeypatch):
    """Each test has its own cache (below): a process's trust in a drain queued in an
    earlier test's cache must not carry over, and drains need not wait for trusted rows.
    tests/test_inbox.py checks the trust itself."""
    from pipeline import inbox

    monkeypatch.setattr(inbox, "FLAG_TRUST_SECONDS", 0)
    monkeypatch.setattr(inbox, "SETTLE_SECONDS", 0)


@pytest.fixture(autouse=True)
def private_cache(settings, tmp_path):
    """Each test gets its own cache, so cluster status never leaks between tests."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        }
    }


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: run with DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def make_task(db):
    """A task placed directly in a stage and phase (as if the engine had put it there)."""
    counter = iter(range(1, 10_000))

    def make(stage="analysis", deploy_phase="", **fields) -> Task:
        n = next(counter)
        defaults = {
            "work_item_id": f"00000000-0000-4000-8000-{n:012d}",
            "project_id": PROJECT,
            "title": f"task {n}",
            "repo": "shop",
        }
        return Task.objects.create(stage=stage, deploy_phase=deploy_phase, **{**defaults, **fields})

    return make


def make_user(username: str, *perms: str, superuser: bool = False):
    users = get_user_model()
    if superuser:
        return users.objects.create_superuser(username, password="pw")
    user = users.objects.create_user(username, password="pw")
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


@pytest.fixture
def driver(db):
    """A pipeline driver (CI, an agent): may read, create and change tasks."""
    return make_user("ci", "pipeline.view_task", "pipeline.add_task", "pipeline.change_task")


@pytest.fixture
def api(client, driver):
    """A test client that sends the driver's token with every request."""
    token = Token.objects.create(user=driver)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {token.key}"
    return client


# --- Plane ---------------------------------------------------------------------------------

PLANE_KEY = "plane_api_test0000000000000000000000"


@pytest.fixture
def plane(settings):
    """A Plane stand-in on loopback, and Stageboard configured to use it."""
    from plane_standin.server import PlaneStandIn

    standin = PlaneStandIn(api_key=PLANE_KEY).start()
    settings.PLANE_API_URL = standin.url
    settings.PLANE_API_KEY = PLANE_KEY
    settings.PLANE_API_PATHS = "auto"
    settings.PLANE_RETRY_BACKOFF = 0.01
    settings.PLANE_SYNC_RETRY_SECONDS = 0.05
    settings.PLANE_READ_TIMEOUT = 2.0
    yield standin
    standin.stop()


@pytest.fixture
def plane_project(plane, db):
    """A Plane project with the pipeline's statuses, configured in Stageboard."""
    from plane_integration.models import PlaneProject
    from plane_standin.server import DEFAULT_STATES, PIPELINE_STATES

    project_id = plane.add_project("acme", states=DEFAULT_STATES + PIPELINE_STATES)
    return PlaneProject.objects.create(project_id=project_id, workspace_slug="acme", repo="shop")


@pytest.fixture
def board_task(plane, plane_project, make_task):
    """A task whose work item exists in the stand-in's project, in Todo."""

    def make(stage="analysis", deploy_phase="", name="Work item", **fields) -> Task:
        work_item_id = plane.add_work_item(
            "acme", str(plane_project.project_id), name, state="Todo"
        )
        return make_task(
            stage=stage,
            deploy_phase=deploy_phase,
            work_item_id=work_item_id,
            project_id=plane_project.project_id,
            title=name,
            **fields,
        )

    return make
