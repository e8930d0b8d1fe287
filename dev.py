#!/usr/bin/env python3
"""Set up and run Stageboard on a machine that has nothing but Python 3.11+.

    python3 dev.py up      create .venv, install, migrate, create the schedules, then run
                           the web server and the q cluster together (Ctrl-C stops both);
                           with no PLANE_API_URL configured, a Plane stand-in with demo
                           data runs beside them and the board follows on it
    python3 dev.py test    create .venv, install with the test tools, lint, run all tests
                           (extra arguments go to pytest)

Both steps are idempotent: the install is repeated only when pyproject.toml changed.
"""

import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
HOST = os.environ.get("STAGEBOARD_HOST", "127.0.0.1")
PORT = os.environ.get("STAGEBOARD_PORT", "8000")
STANDIN_PORT = os.environ.get("STAGEBOARD_PLANE_STANDIN_PORT", "8001")
STANDIN_KEY = "plane_api_standin"
STANDIN_WEBHOOK_SECRET = "plane_wh_00000000000000000000000000000000"  # a local demo only
STANDIN_BOT_USER = "b0700000-0000-4000-8000-000000000001"  # standin.BOT_USER_ID
# The stand-in's fixed demo project (plane_standin.server.DEMO_PROJECT_ID).
DEMO_PROJECT = "0de00000-0000-4000-8000-000000000001"


def run(*args: object, **kwargs) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, **kwargs)


def manage(*args: object, env: dict | None = None) -> None:
    run(PYTHON, "manage.py", *args, env=env)


def plane_configured() -> bool:
    """Whether the environment or .env names a real Plane to talk to."""
    if os.environ.get("PLANE_API_URL"):
        return True
    dotenv = ROOT / ".env"
    lines = dotenv.read_text().splitlines() if dotenv.exists() else []
    return any(
        line.strip().startswith("PLANE_API_URL=") and line.split("=", 1)[1].strip()
        for line in lines
    )


def ensure_environment(extra: str) -> None:
    """Create the virtual environment and install the project into it, once per change."""
    if sys.version_info < (3, 11):  # noqa: UP036  (dev.py runs on whatever python3 is)
        sys.exit(f"Stageboard needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not PYTHON.exists():
        print(f"creating {VENV.name}/ ...", flush=True)
        venv.create(VENV, with_pip=True)
    target = f".[{extra}]" if extra else "."
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + target.encode()).hexdigest()
    stamp = VENV / f".installed{'-' + extra if extra else ''}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"installing {target} into {VENV.name}/ ...", flush=True)
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--editable", target)
    stamp.write_text(digest)


def ensure_dotenv() -> None:
    """A local .env with a fresh secret key, so a first run needs no configuration."""
    dotenv = ROOT / ".env"
    if dotenv.exists():
        return
    dotenv.write_text(
        "# Written by `python3 dev.py up` for a local run; see .env.example for every setting.\n"
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\n"
        "DJANGO_DEBUG=true\n"
    )
    print("wrote .env with a fresh DJANGO_SECRET_KEY", flush=True)


def prepare(demo: bool) -> None:
    """Migrate, collect static files, create the schedules; the demo admin only in demo mode.

    A deployment pointed at a real Plane is no demo: an admin/admin account there would
    be an open door, so it gets none (make accounts with `manage.py createsuperuser`).
    """
    manage("migrate", "--noinput", "-v", "1")
    manage("collectstatic", "--noinput", "-v", "0")
    manage("setup_schedules")
    if demo:
        print("demo mode (Plane stand-in): ensuring the demo account admin/admin", flush=True)
        manage("ensure_demo_admin")
    else:
        print("a real Plane is configured: no demo account is created", flush=True)


def up() -> int:
    ensure_environment("")
    ensure_dotenv()
    prepare(demo=not plane_configured())
    env, children = dict(os.environ), []
    if not plane_configured():
        env.update(
            PLANE_API_URL=f"http://127.0.0.1:{STANDIN_PORT}",
            PLANE_API_KEY=STANDIN_KEY,
            PLANE_WORKSPACE_SLUG="demo",
            PLANE_WEBHOOK_SECRET=STANDIN_WEBHOOK_SECRET,
            PLANE_BOT_USER_ID=STANDIN_BOT_USER,
        )
        # The demo repo's "production" is Stageboard itself: a short window, watched live.
        for name, value in (
            ("ORCH_POST_DEPLOY_REPOS", "demo"),
            ("ORCH_POST_DEPLOY_WINDOW_MINUTES", "2"),
            ("ORCH_POST_DEPLOY_TICK_SECONDS", "10"),
        ):
            env.setdefault(name, value)
        standin = [PYTHON, "-m", "plane_standin", "--port", STANDIN_PORT]
        standin += ["--api-key", STANDIN_KEY, "--webhook-secret", STANDIN_WEBHOOK_SECRET]
        standin += ["--webhook-url", f"http://{HOST}:{PORT}/webhooks/plane/"]
        children.append(subprocess.Popen(standin, cwd=ROOT))
        manage(
            "plane_project", "add", DEMO_PROJECT, "--repo", "demo", "--workspace", "demo", env=env
        )
        manage("repo", "set", "demo", "--health-url", f"http://{HOST}:{PORT}/healthz", env=env)
    children += [
        subprocess.Popen(
            [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
        ),
        subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env),
    ]
    board = "a real Plane" if plane_configured() else f"the Plane stand-in on port {STANDIN_PORT}"
    print(
        f"\nStageboard runs on http://{HOST}:{PORT}/  (admin: /admin/, API: /api/, "
        f"health: /healthz), its board on {board}. Ctrl-C stops everything.\n",
        flush=True,
    )
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    return stop(children)


def stop(children: list[subprocess.Popen]) -> int:
    # SIGTERM, not SIGINT: both servers handle it (the q cluster finishes its current task),
    # and no child can have inherited it ignored.
    for child in children:
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    # A child that exited on its own with an error decides the exit code; a signal is normal.
    failed = [child.returncode for child in children if child.returncode and child.returncode > 0]
    return failed[0] if failed else 0


def interrupt(signum, frame):
    raise KeyboardInterrupt


def test(pytest_args: list[str]) -> int:
    ensure_environment("test")
    database = os.environ.get("DATABASE_URL", "").split("@")[-1] or "SQLite (default)"
    print(f"lint, then tests on {database}", flush=True)
    lint = subprocess.run([BIN / "ruff", "check", "."], cwd=ROOT)
    if lint.returncode:
        return lint.returncode
    return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, *rest = argv or ["help"]
    if command == "up":
        return up()
    if command == "test":
        return test(rest)
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
