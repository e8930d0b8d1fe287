"""Stageboard settings: one module, every value from the environment.

Defaults make a fresh checkout run on one machine (SQLite, file cache, ORM broker);
`DATABASE_URL` and `REDIS_URL` scale it out. A malformed value fails at start-up with
the variable's name, never later.
"""

import os
import zoneinfo
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` (written by `dev.py up`, see .env.example) fills in what the process
# environment does not set; the process environment always wins.
environ.Env.read_env(os.environ.get("STAGEBOARD_ENV_FILE", BASE_DIR / ".env"), overwrite=False)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _TRUE | _FALSE:
        return raw.strip().lower() in _TRUE
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    return value


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, not {value}")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, not {value}")
    return value


# Local state of the embedded setup: SQLite file, file cache, collected static files.
VAR_DIR = Path(env.str("STAGEBOARD_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DJANGO_DEBUG", False)
# The fallback key is only good for tests and local runs; `check` refuses it when
# DEBUG is off (pipeline.checks), the way Django's startproject keys are flagged.
INSECURE_SECRET_KEY = "django-insecure-stageboard-development-only"
# The placeholder in .env.example: a copied example must not become a deployment's key.
PLACEHOLDER_SECRET_KEY = "change-me-to-50-random-characters"
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=INSECURE_SECRET_KEY)
if not DEBUG and SECRET_KEY.strip() in ("", PLACEHOLDER_SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is empty or the .env.example placeholder; set it to a long random "
        "value (python3 -c 'import secrets; print(secrets.token_urlsafe(50))'), or set "
        "DJANGO_DEBUG=true for a local development run."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
# Origins (scheme://host) whose form posts are trusted, e.g. the public HTTPS address
# behind a TLS-terminating proxy; without it the admin login there fails CSRF (403).
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """`X-Forwarded-Proto: https` -> ("HTTP_X_FORWARDED_PROTO", "https"); unset: None."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    header, sep, value = raw.partition(":")
    if not sep or not header.strip() or not value.strip():
        raise ImproperlyConfigured(f"{name} must look like 'X-Forwarded-Proto: https', not {raw!r}")
    return "HTTP_" + header.strip().upper().replace("-", "_"), value.strip()


# Opt-in: only behind a proxy that always sets (or strips) this header, since otherwise any
# client could claim its request came over HTTPS.
SECURE_PROXY_SSL_HEADER = env_proxy_ssl_header("DJANGO_SECURE_PROXY_SSL_HEADER")
# Users reach Stageboard over HTTPS (directly or through the proxy): cookies only over
# HTTPS, redirect HTTP to HTTPS, and tell browsers to stay on HTTPS (HSTS).
HTTPS = env_bool("DJANGO_HTTPS", False)
if HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = True
    # Load balancers probe /healthz over plain HTTP on the internal network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)

INSTALLED_APPS = [
    # Django's admin with the operations dashboard as its front page; its modules are not
    # discovered in the q cluster (pipeline/admin_config.py).
    "operations.admin_site.StageboardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    # Swagger UI's files, served from here: the docs page needs no CDN.
    "drf_spectacular_sidecar",
    "pipeline",
    "plane_integration",
    "monitoring",
    "git_hosts",
    "operations",
    # After pipeline: pipeline's `qcluster` (which keeps the URLconf out of the cluster)
    # takes the place of django-q2's.
    "django_q",
]

MIDDLEWARE = [
    "pipeline.middleware.JsonErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "pipeline.middleware.SlashMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "pipeline.urls"
WSGI_APPLICATION = "pipeline.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Searched before the apps: the admin app comes first in INSTALLED_APPS, so overriding
        # its own templates (admin/base_site.html: the version in the footer) needs a DIRS entry.
        "DIRS": [BASE_DIR / "operations" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'stageboard.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the q cluster write at once. WAL lets readers run beside the
    # writer; IMMEDIATE takes the write lock when a transaction starts, so two writers
    # queue on the busy timeout instead of failing with "database is locked" mid-way.
    # Writers queue on a file lock, not on SQLite's sleeping busy handler (pipeline/sqlite).
    DATABASES["default"]["ENGINE"] = "pipeline.sqlite"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
# Persistent connections: a new one per request (and, on SQLite, its PRAGMAs) cost more
# than the webhook endpoint's whole work.
DATABASES["default"]["CONN_MAX_AGE"] = env_int("DJANGO_CONN_MAX_AGE", 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
_postgresql = DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
if _postgresql and DATABASE_PREPARED_STATEMENTS:
    # Half of PostgreSQL's CPU per webhook INSERT is planning it. Django's own cursors
    # bind on the client and are never prepared, so this reaches only the webhook
    # INSERT (pipeline/inbox), which binds on the server. A pooler in transaction mode
    # that cannot carry prepared statements (PgBouncer before 1.21) needs it off.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 5)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache ----------------------------------------------------------------------------
# Shared by every process: the q cluster publishes its status here and /healthz reads
# it. Without Redis a file cache is the one built-in backend that processes share.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Background work (django-q2) ------------------------------------------------------
Q_CLUSTER = {
    "name": "stageboard",
    # The ORM broker keeps each task in the database until a worker acknowledges it, so
    # work that a crashed worker held is redelivered once its lock (`retry`) expires.
    "orm": "default",
    # One worker fits a small machine: webhook deliveries are worked off in batches by a
    # drain (plane_integration.drain), so more workers buy little and cost ~17 MB each.
    "workers": env_int("Q_WORKERS", 1, minimum=1),
    "timeout": env_int("Q_TIMEOUT", 60, minimum=1),
    # Must exceed `timeout`, or a task still running would be handed to a second worker.
    "retry": env_int("Q_RETRY", 90, minimum=2),
    "max_attempts": env_int("Q_MAX_ATTEMPTS", 5, minimum=1),
    # A schedule missed while the cluster was down runs once, not once per missed slot.
    "catch_up": False,
    # -1: successes are not stored (failures always are). With a positive limit django-q2
    # reads and unpickles every stored success on each result save to prune them (20 ms
    # at 1,000), in its single monitor process; 0 would keep them all forever.
    "save_limit": env_int("Q_SAVE_LIMIT", -1, minimum=-1),
    "poll": 0.5,
    "cache": "default",
    "label": "Background tasks",
}
if Q_CLUSTER["retry"] <= Q_CLUSTER["timeout"]:
    raise ImproperlyConfigured(
        f"Q_RETRY ({Q_CLUSTER['retry']}) must be greater than Q_TIMEOUT ({Q_CLUSTER['timeout']})"
    )
# The cluster's processes run at this nice value (0 to 19): on a machine it shares with
# the web, a burst of webhooks gets the CPU first and the drain catches up right after
# (on PostgreSQL the webhook p99 fell from about 2.0 to 1.6 x the floor's at 10, the
# backlog still worked off within a second: tests/benchmarks/webhook_ingest.py). 0 leaves
# the priority as it is.
Q_NICE = env_int("Q_NICE", 10, maximum=19)
# How long ago the cluster must have reported for /healthz to count it as up. django-q2
# refreshes its status every guard cycle (0.5 s) and lets it expire after 3 s.
HEALTHZ_CLUSTER_MAX_AGE = env_int("HEALTHZ_CLUSTER_MAX_AGE", 30, minimum=1)

# --- API ------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes an unauthenticated call a 401.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "pipeline.authentication.TokenSchemeAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "pipeline.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Stageboard pipeline API",
    "DESCRIPTION": "Drive tasks through the delivery pipeline. Tasks are addressed by "
    "their Plane work item id.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema (and any viewer added later) maps the whole API: users only.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Each operation's refusals too, so clients and the API fuzz test can check them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "pipeline.api_schema.document_errors",
    ],
    # JSON in: the schema offers no form bodies, which cannot say null,
    # a number or a list. The parsers still take them, so no caller breaks.
    "PARSER_WHITELIST": ["rest_framework.parsers.JSONParser"],
    "ENUM_NAME_OVERRIDES": {
        "Stage": "pipeline.models.STAGE_CHOICES",
        "DeployPhase": "pipeline.models.PHASE_CHOICES",
    },
}

# --- Plane ----------------------------------------------------------------------------
# Unset URL or key: Stageboard runs without a board; setters answer "skipped".
PLANE_API_URL = env.str("PLANE_API_URL", default="")
PLANE_API_KEY = env.str("PLANE_API_KEY", default="")
# The workspace `plane_project add` uses when none is given.
PLANE_WORKSPACE_SLUG = env.str("PLANE_WORKSPACE_SLUG", default="")
# Plane's web app (https://app.plane.so or a self-hosted address): the admin links every
# task to its work item there. Unset: no links.
PLANE_WEB_URL = env.str("PLANE_WEB_URL", default="")
# `work-items`, `issues` (servers before v1.1.0), or `auto` to find out once.
PLANE_API_PATHS = env.str("PLANE_API_PATHS", default="auto")
if PLANE_API_PATHS not in ("auto", "work-items", "issues"):
    raise ImproperlyConfigured(
        f"PLANE_API_PATHS must be auto, work-items or issues, not {PLANE_API_PATHS!r}"
    )
# Plane allows 60 requests a minute per API key unless its admin raised API_KEY_RATE_LIMIT.
PLANE_RATE_LIMIT_PER_MINUTE = env_int("PLANE_RATE_LIMIT_PER_MINUTE", 60, minimum=1)
PLANE_RATE_WINDOW_SECONDS = env_float("PLANE_RATE_WINDOW_SECONDS", 60.0, minimum=0.1)
PLANE_CONNECT_TIMEOUT = env_float("PLANE_CONNECT_TIMEOUT", 3.05, minimum=0.1)
PLANE_READ_TIMEOUT = env_float("PLANE_READ_TIMEOUT", 10.0, minimum=0.1)
# Resends of one request after a connection error, a timeout or a 5xx.
PLANE_RETRIES = env_int("PLANE_RETRIES", 2)
PLANE_RETRY_BACKOFF = env_float("PLANE_RETRY_BACKOFF", 0.5)
# A delivery naming a state the cache does not know re-reads the project's states at most
# once in this many seconds.
PLANE_STATES_REFRESH_SECONDS = env_float("PLANE_STATES_REFRESH_SECONDS", 60.0)
# First wait before the board sync retries a failed work item; doubles up to 10 minutes.
PLANE_SYNC_RETRY_SECONDS = env_float("PLANE_SYNC_RETRY_SECONDS", 15.0)

# Webhooks: the secret Plane signs with, and the user whose changes are our own echoes.
PLANE_WEBHOOK_SECRET = env.str("PLANE_WEBHOOK_SECRET", default="")
PLANE_BOT_USER_ID = env.str("PLANE_BOT_USER_ID", default="")
# A work item webhook is a few kB; anything near this is not from Plane.
PLANE_WEBHOOK_MAX_BYTES = env_int("PLANE_WEBHOOK_MAX_BYTES", 1024 * 1024, minimum=1024)

# --- Git hosts (git_hosts) ---------------------------------------------------------------
# The secret of each host's webhook; a host whose secret is unset is refused (403). GitHub
# and Forgejo sign the body with it (HMAC-SHA256), GitLab sends it as X-Gitlab-Token.
GITHUB_WEBHOOK_SECRET = env.str("GITHUB_WEBHOOK_SECRET", default="")
GITLAB_WEBHOOK_SECRET = env.str("GITLAB_WEBHOOK_SECRET", default="")
FORGEJO_WEBHOOK_SECRET = env.str("FORGEJO_WEBHOOK_SECRET", default="")
# Each host's web address, for the admin's links to commits (the linked repo's path under
# it). GitHub's and GitLab's public sites by default; set a self-hosted GitLab's address,
# or an empty value for no links. Forgejo and Gitea have no public default.
GITHUB_WEB_URL = env.str("GITHUB_WEB_URL", default="https://github.com")
GITLAB_WEB_URL = env.str("GITLAB_WEB_URL", default="https://gitlab.com")
FORGEJO_WEB_URL = env.str("FORGEJO_WEB_URL", default="")
# DORA's deployment rework rate: a deploy within this many hours after a failed, rolled-back
# or degraded deploy of the same repo and environment is rework.
DORA_REWORK_HOURS = env_float("DORA_REWORK_HOURS", 24.0, minimum=0.01)

# --- Post-deploy monitor ---------------------------------------------------------------
# The repo Stageboard itself deploys to: its monitor only ever alerts, never rolls back.
ORCH_SELF_HOSTING_REPO = env.str("ORCH_SELF_HOSTING_REPO", default="stageboard")
# The deploy status guard's kill-switch and repos (CSV; empty: the self-hosting repo only).
# These and the ORCH_POST_DEPLOY_ values below only seed the runtime switchboard on first
# start; after that the admin's switchboard is the one place to change them.
ORCH_DEPLOY_STATUS_GUARD_ENABLED = env_bool("ORCH_DEPLOY_STATUS_GUARD_ENABLED", True)
ORCH_DEPLOY_STATUS_GUARD_REPOS = env.list("ORCH_DEPLOY_STATUS_GUARD_REPOS", default=[])
ORCH_POST_DEPLOY_ENABLED = env_bool("ORCH_POST_DEPLOY_ENABLED", True)
# Repos whose deploys are watched; empty: the self-hosting repo only.
ORCH_POST_DEPLOY_REPOS = env.list("ORCH_POST_DEPLOY_REPOS", default=[])
# Fractions allowed, so tests and demos can run short windows.
ORCH_POST_DEPLOY_WINDOW_MINUTES = env_float("ORCH_POST_DEPLOY_WINDOW_MINUTES", 15.0, minimum=0.01)
ORCH_POST_DEPLOY_TICK_SECONDS = env_float("ORCH_POST_DEPLOY_TICK_SECONDS", 60.0, minimum=0.1)
ORCH_POST_DEPLOY_FAIL_THRESHOLD = env_int("ORCH_POST_DEPLOY_FAIL_THRESHOLD", 3, minimum=1)
ORCH_POST_DEPLOY_ERROR_RATIO = env_float("ORCH_POST_DEPLOY_ERROR_RATIO", 0.1)
ORCH_POST_DEPLOY_MIN_SAMPLES = env_int("ORCH_POST_DEPLOY_MIN_SAMPLES", 5, minimum=1)
ORCH_POST_DEPLOY_PROBE_TIMEOUT = env_float("ORCH_POST_DEPLOY_PROBE_TIMEOUT", 5.0, minimum=0.1)
# The Prometheus that analysis checks (`repo check add --prometheus`) query; basic auth may
# ride in the URL (https://user:pass@prom.example.com). Unset: Prometheus checks are refused.
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="")
PROMETHEUS_BEARER_TOKEN = env.str("PROMETHEUS_BEARER_TOKEN", default="")
# Seeds the switchboard flag: one comment per deploy outcome on the task's work item.
ORCH_DEPLOY_COMMENTS_ENABLED = env_bool("ORCH_DEPLOY_COMMENTS_ENABLED", True)

# --- Notifications and metrics -----------------------------------------------------------
# Apprise URLs (comma or space separated): slack://, msteams://, discord://, mailto://,
# ntfy://, json://... Empty: notifications are recorded as skipped, never sent.
# Kept as one string: apprise splits it itself, and knows which commas belong to a URL.
NOTIFY_URLS = env.str("NOTIFY_URLS", default="")
# A deploy still awaiting approval after this many minutes is notified once.
NOTIFY_APPROVAL_AFTER_MINUTES = env_int("NOTIFY_APPROVAL_AFTER_MINUTES", 30, minimum=1)
# Failures only by default; true also notifies successful and failed deploys.
NOTIFY_ALL_DEPLOYS = env_bool("NOTIFY_ALL_DEPLOYS", False)
# Occurrences of one kind within this many seconds of a sent notification are grouped
# into the next one instead of being sent one by one.
NOTIFY_GROUP_SECONDS = env_int("NOTIFY_GROUP_SECONDS", 600, minimum=0)
# Sends of one notification before it is recorded as failed.
NOTIFY_MAX_ATTEMPTS = env_int("NOTIFY_MAX_ATTEMPTS", 5, minimum=1)
# GET /metrics answers a request with "Authorization: Bearer <this>" or a staff session.
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")

# --- Reconciler ---------------------------------------------------------------------------
# Seeds the switchboard's kill-switch for scheduled sweeps, like the ORCH_ flags above.
ORCH_RECONCILE_ENABLED = env_bool("ORCH_RECONCILE_ENABLED", True)
# Seeds the kill-switch for Git host events (git_hosts): off, they are stored but move nothing.
ORCH_GIT_EVENTS_ENABLED = env_bool("ORCH_GIT_EVENTS_ENABLED", True)
# Minutes between incremental sweeps (newest changes only) and between full sweeps (every
# page, and work items that have gone). `manage.py setup_schedules` writes them.
RECONCILE_INTERVAL_MINUTES = env_int("RECONCILE_INTERVAL_MINUTES", 5, minimum=1)
RECONCILE_FULL_MINUTES = env_int("RECONCILE_FULL_MINUTES", 60, minimum=1)
# An incremental sweep reads back to where the last complete sweep began, less this margin
# (Plane's clock and ours may differ; a change in flight while that sweep read may be late).
RECONCILE_SAFETY_MARGIN_SECONDS = env_int("RECONCILE_SAFETY_MARGIN_SECONDS", 120, minimum=0)

# --- Auth, i18n, static ----------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"


def env_time_zone(name: str, default: str) -> str:
    """An IANA time zone name (`Europe/Berlin`); the admin shows times in it."""
    raw = os.environ.get(name, default).strip() or default
    try:
        zoneinfo.ZoneInfo(raw)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ImproperlyConfigured(
            f"{name} must be a time zone name such as UTC or Europe/Berlin, not {raw!r}"
        ) from None
    return raw


TIME_ZONE = env_time_zone("TIME_ZONE", "UTC")
# Times with seconds and their zone (`2025-03-14 09:26:53 CET`), dates as ISO 8601:
# pipeline/formats/en/formats.py, since the locale's own formats win over settings.
FORMAT_MODULE_PATH = ["pipeline.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# `json`: one JSON object a line, with the structured fields (work_item, caller, ...) as keys.
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be text or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
