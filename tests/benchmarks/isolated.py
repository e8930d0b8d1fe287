"""The environment a benchmark runs Stageboard in: its own files, nothing shared."""

import os
import tempfile
from pathlib import Path


def environment(database_url: str = "", **settings: str) -> dict[str, str]:
    """This process's environment with a fresh var dir (SQLite file, cache), no .env, no
    shared database or cache unless `database_url` names one, and the given settings."""
    workdir = tempfile.mkdtemp(prefix="stageboard-bench-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        STAGEBOARD_VAR_DIR=workdir,
        STAGEBOARD_ENV_FILE=str(Path(workdir) / "none.env"),
        DJANGO_SECRET_KEY="benchmark",
        DJANGO_SETTINGS_MODULE="pipeline.settings",
        LOG_LEVEL="WARNING",
        **settings,
    )
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def use(env: dict[str, str]) -> None:
    """Make `env` this process's environment (before Django is set up)."""
    os.environ.clear()
    os.environ.update(env)
