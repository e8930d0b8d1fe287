"""Settings from the environment, loaded in a fresh interpreter as a process would."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("DATABASE_", "REDIS_URL", "DJANGO_", "Q_", "STAGEBOARD_", "HEALTHZ_", "PLANE_", "LOG_")

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
    assert s["engine"] == "pipeline.sqlite"  # django.db.backends.sqlite3, writers queued
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
    assert s["options"] == {"prepare_threshold": 5}  # the webhook INSERT, planned once


def test_prepared_statements_can_be_turned_off_for_a_pooler(tmp_path):
    s = settings_for(
        tmp_path,
        DATABASE_URL="postgres://postgres@db.internal:5432/stageboard",
        DATABASE_PREPARED_STATEMENTS="false",
    )
    assert s["options"] == {}
    assert "prepare_threshold" not in settings_for(tmp_path)["options"]  # SQLite: none


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
        ({"Q_NICE": "20"}, "Q_NICE must be at most 19, not 20"),
        (
            {"Q_TIMEOUT": "120", "Q_RETRY": "60"},
            "Q_RETRY (60) must be greater than Q_TIMEOUT (120)",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT must be text or json, not 'xml'"),
        ({"PLANE_API_PATHS": "tickets"}, "PLANE_API_PATHS must be auto, work-items or issues"),
        ({"PLANE_READ_TIMEOUT": "soon"}, "PLANE_READ_TIMEOUT must be a number, not 'soon'"),
        ({"TIME_ZONE": "Mars/Olympus"}, "TIME_ZONE must be a time zone name such as UTC"),
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


def manage(tmp_path, *args: str, **variables) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"), STAGEBOARD_VAR_DIR=str(tmp_path))
    env.update(variables)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )


PRODUCTION = {
    "DJANGO_DEBUG": "0",
    "DJANGO_SECRET_KEY": "k2Qy8Vw1-pF7mZt4Rb9sXc3Nh6Lj0Ud5Ge8Ao2Wi7Ky4Pq1Sv6Tx9Bn3Mf5Cr8Dz0",
    "DJANGO_ALLOWED_HOSTS": "stageboard.example.com",
}


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    clean = manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION, DJANGO_HTTPS="1"
    )
    assert clean.returncode == 0, clean.stderr
    assert "no issues" in clean.stdout
    # Without HTTPS the same check names what is missing, so the test above can fail.
    plain = manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert plain.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert f"security.{warning}" in plain.stderr


@pytest.mark.parametrize("key", ["", "  ", "change-me-to-50-random-characters"])
def test_an_empty_or_placeholder_secret_key_stops_the_start_outside_debug(tmp_path, key):
    refused = load(tmp_path, DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key)
    assert refused.returncode != 0
    assert "DJANGO_SECRET_KEY is empty or the .env.example placeholder" in refused.stderr
    assert load(tmp_path, DJANGO_DEBUG="1", DJANGO_SECRET_KEY=key).returncode == 0


def test_the_example_env_file_holds_the_placeholder_the_start_refuses():
    example = (ROOT / ".env.example").read_text()
    assert "DJANGO_SECRET_KEY=change-me-to-50-random-characters\n" in example
    for name in (
        "DJANGO_HTTPS",
        "DJANGO_CSRF_TRUSTED_ORIGINS",
        "DJANGO_SECURE_PROXY_SSL_HEADER",
        "PLANE_STATES_REFRESH_SECONDS",
    ):
        assert name in example


HTTPS_PROBE = """
from pipeline import settings as s
print(s.CSRF_TRUSTED_ORIGINS, s.SECURE_PROXY_SSL_HEADER, getattr(s, "SESSION_COOKIE_SECURE", 0),
      getattr(s, "CSRF_COOKIE_SECURE", 0), getattr(s, "SECURE_HSTS_SECONDS", 0))
"""


def test_https_behind_a_proxy_is_configured_from_the_environment(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(OURS)}
    env.update(
        STAGEBOARD_ENV_FILE=str(tmp_path / "missing.env"),
        STAGEBOARD_VAR_DIR=str(tmp_path),
        DJANGO_CSRF_TRUSTED_ORIGINS="https://stageboard.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto: https",
        DJANGO_HTTPS="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.stdout.split() == [
        "['https://stageboard.example.com']",
        "('HTTP_X_FORWARDED_PROTO',",
        "'https')",
        "True",
        "True",
        "31536000",
    ], result.stderr
    env["DJANGO_SECURE_PROXY_SSL_HEADER"] = "https"
    bad = subprocess.run(
        [sys.executable, "-c", HTTPS_PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert "DJANGO_SECURE_PROXY_SSL_HEADER must look like" in bad.stderr


@pytest.mark.django_db
def test_the_admin_login_works_behind_a_tls_proxy(settings, django_user_model):
    from django.test import Client

    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["stageboard.example.com"]
    django_user_model.objects.create_superuser("op", password="pw")
    browser = Client(enforce_csrf_checks=True, HTTP_HOST="stageboard.example.com")
    proxied = {"HTTP_X_FORWARDED_PROTO": "https", "HTTP_ORIGIN": "https://stageboard.example.com"}

    def log_in(**headers):
        browser.get("/admin/login/", **headers)
        token = browser.cookies["csrftoken"].value
        form = {"username": "op", "password": "pw", "csrfmiddlewaretoken": token}
        return browser.post("/admin/login/", form, **headers)

    assert log_in(HTTP_ORIGIN="https://stageboard.example.com").status_code == 403  # no header
    assert log_in(**proxied).status_code == 302


def test_a_bad_value_is_one_line_without_a_traceback(tmp_path):
    result = manage(tmp_path, "check", Q_WORKERS="two")
    assert result.returncode == 1
    assert result.stderr == "Stageboard cannot start: Q_WORKERS must be a whole number, not 'two'\n"
