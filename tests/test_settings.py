"""Settings from the environment, loaded in a fresh interpreter as a process would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("DATABASE_URL", "REDIS_URL", "DJANGO_", "Q_", "STAGEBOARD_", "HEALTHZ_", "PLANE_", "LOG_")

PROBE = """
import json
from pipeline import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "options": db.get("OPTIONS", {}),
    "host": db.get("HOST"), "cache": s.CACHES["default"]["BACKEND"],
    "cache_location": s.CACHES["default"]["LOCATION"], "debug": s.DEBUG, "q": s.Q_CLUSTER,
}))
"""


def load(tmp_path, **variables) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"), STAGEBOARD_VAR_DIR=str(tmp_path))
    env.update(variables)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )


def settings_for(tmp_path, **variables) -> dict:
    result = load(tmp_path, **variables)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_default_is_sqlite_in_wal_mode_with_a_file_cache(tmp_path):
    s = settings_for(tmp_path)
    assert s["engine"] == "django.db.backends.sqlite3"
    assert s["name"] == str(tmp_path / "stageboard.sqlite3")
    assert s["options"]["transaction_mode"] == "IMMEDIATE"
    assert s["options"]["timeout"] >= 5
    assert "journal_mode=WAL" in s["options"]["init_command"]
    assert s["cache"] == "django.core.cache.backends.filebased.FileBasedCache"
    assert s["debug"] is False


def test_database_url_switches_to_postgresql(tmp_path):
    s = settings_for(tmp_path, DATABASE_URL="postgres://postgres@db.internal:5432/stageboard")
    assert (s["engine"], s["name"], s["host"]) == (
        "django.db.backends.postgresql",
        "stageboard",
        "db.internal",
    )
    assert s["options"] == {}


def test_redis_url_switches_the_shared_cache_to_redis(tmp_path):
    s = settings_for(tmp_path, REDIS_URL="redis://127.0.0.1:6379/1")
    assert s["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert s["cache_location"] == "redis://127.0.0.1:6379/1"


def test_the_q_cluster_uses_the_orm_broker_safely(tmp_path):
    q = settings_for(tmp_path)["q"]
    assert q["orm"] == "default"
    assert q["catch_up"] is False
    assert q["retry"] > q["timeout"]
    assert 1 <= q["max_attempts"] <= 10


def test_a_dotenv_file_fills_in_but_never_overrides(tmp_path):
    dotenv = tmp_path / "local.env"
    dotenv.write_text("DJANGO_DEBUG=true\nQ_WORKERS=7\n")
    s = settings_for(tmp_path, STAGEBOARD_ENV_FILE=str(dotenv), Q_WORKERS="3")
    assert s["debug"] is True
    assert s["q"]["workers"] == 3


@pytest.mark.parametrize(
    "variables,message",
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be true or false, not 'maybe'"),
        ({"Q_WORKERS": "two"}, "Q_WORKERS must be a whole number, not 'two'"),
        ({"Q_WORKERS": "0"}, "Q_WORKERS must be at least 1, not 0"),
        (
            {"Q_TIMEOUT": "120", "Q_RETRY": "60"},
            "Q_RETRY (60) must be greater than Q_TIMEOUT (120)",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json, not 'xml'"),
        ({"PLANE_API_PATHS": "tickets"}, "PLANE_API_PATHS must be auto, work-items or issues"),
        ({"PLANE_READ_TIMEOUT": "soon"}, "PLANE_READ_TIMEOUT must be a number, not 'soon'"),
    ],
)
def test_a_bad_value_stops_the_start_naming_the_variable(tmp_path, variables, message):
    result = load(tmp_path, **variables)
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {message}" in result.stderr


def test_check_refuses_the_development_key_outside_debug(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"), STAGEBOARD_VAR_DIR=str(tmp_path))
    refused = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "stageboard.E001" in refused.stderr
    env["DJANGO_SECRET_KEY"] = "a-real-secret-key-for-this-test"
    accepted = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert accepted.returncode == 0, accepted.stderr


def test_json_logs_carry_the_structured_fields(tmp_path):
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('plane_integration.setters').info("
        "'event=board_status', extra={'work_item': 'w1', 'caller': 'ci', 'outcome': 'sent'})"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(
        STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"),
        STAGEBOARD_VAR_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="pipeline.settings",
        LOG_FORMAT="json",
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert (line["work_item"], line["caller"], line["outcome"]) == ("w1", "ci", "sent")
    assert line["levelname"] == "INFO"
