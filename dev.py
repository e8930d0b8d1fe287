#!/usr/bin/env python3
"""Set up and run Stageboard on a machine that has nothing but Python 3.11+.

    python3 dev.py up      create .venv, install, migrate, create the schedules, then run
                           the web server and the q cluster together (Ctrl-C stops both);
                           with no PLANE_API_URL configured, a Plane stand-in with demo
                           data runs beside them and the board follows on it
    python3 dev.py test    create .venv, install with the test tools, lint, run all tests
                           (extra arguments go to pytest)
    python3 dev.py demo    with `up` running in demo mode, play the demo's story against it
                           and say at each step where to look
    python3 dev.py token   print the demo account's API token as a line to paste: TOKEN=...

Ports: STAGEBOARD_HOST (127.0.0.1), STAGEBOARD_PORT (8000), STAGEBOARD_PLANE_STANDIN_PORT (8001).

Both steps are idempotent: the install is repeated only when pyproject.toml changed.
"""

import hashlib
import os
import secrets
import signal
import socket
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
# The demo's GitHub webhook secret (plane_standin.story.GITHUB_SECRET): a local demo only.
STANDIN_GITHUB_SECRET = "gh_demo_0000000000000000000000000000"
STANDIN_BOT_USER = "b0700000-0000-4000-8000-000000000001"  # standin.BOT_USER_ID
# The stand-in's fixed demo project (plane_standin.server.DEMO_PROJECT_ID).
DEMO_PROJECT = "0de00000-0000-4000-8000-000000000001"
# The demo repo's analysis check (`dev.py up` and the demo's test): its p99 latency, read
# from the stand-in's /demo/metrics, fails the deploy above 0.5 s more than once.
DEMO_CHECK = ("repo", "check", "add", "demo", "p99", "--http")
DEMO_CHECK_LIMIT = ("--json-path", "$.p99_seconds", "--max", "0.5", "--failure-limit", "1")
# dev.py up (demo mode) keeps the stand-in's settings in .env between these lines, so
# `.venv/bin/python manage.py ...` run by hand talks to the same demo Plane. They are not a
# real Plane: plane_configured() skips them.
DEMO_BEGIN = "# >>> demo Plane stand-in (written by dev.py up; delete this block for a real Plane)"
DEMO_END = "# <<< demo Plane stand-in"


def run(*args: object, **kwargs) -> None:
    subprocess.run([str(a) for a in args], cwd=ROOT, check=True, **kwargs)


def manage(*args: object, env: dict | None = None, quiet: bool = False) -> None:
    run(PYTHON, "manage.py", *args, env=env, stdout=subprocess.DEVNULL if quiet else None)


def wait_for_port(port: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex((HOST, int(port))) == 0:
                return
        time.sleep(0.2)
    sys.exit(f"nothing answers on {HOST}:{port} after {timeout:.0f} s")


def plane_configured() -> bool:
    """Whether the environment or .env names a real Plane to talk to (the demo block of
    .env is the stand-in, not a real Plane)."""
    if os.environ.get("PLANE_API_URL"):
        return True
    return any(
        line.strip().startswith("PLANE_API_URL=") and line.split("=", 1)[1].strip()
        for line in dotenv_lines(demo_block=False)
    )


def dotenv_lines(*, demo_block: bool) -> list[str]:
    """The lines of .env outside the demo block, or with demo_block, the block's own."""
    dotenv = ROOT / ".env"
    inside, kept = False, []
    for line in dotenv.read_text().splitlines() if dotenv.exists() else []:
        if line.strip() == DEMO_BEGIN:
            inside = True
        elif line.strip() == DEMO_END:
            inside = False
        elif inside == demo_block:
            kept.append(line)
    return kept


def demo_settings() -> dict[str, str]:
    """What the demo runs with: the stand-in as Plane, and a short monitor window on the
    demo repo, guarded, whose "production" is the stand-in's /demo/health."""
    standin = f"http://{HOST}:{STANDIN_PORT}"
    return {
        "PLANE_API_URL": standin,
        "PLANE_API_KEY": STANDIN_KEY,
        "PLANE_WORKSPACE_SLUG": "demo",
        "PLANE_WEBHOOK_SECRET": STANDIN_WEBHOOK_SECRET,
        "PLANE_BOT_USER_ID": STANDIN_BOT_USER,
        "GITHUB_WEBHOOK_SECRET": STANDIN_GITHUB_SECRET,
        # The admin's "open in Plane" links lead to the stand-in's board.
        "PLANE_WEB_URL": standin,
        "ORCH_POST_DEPLOY_REPOS": "demo",
        "ORCH_DEPLOY_STATUS_GUARD_REPOS": "demo",
        "ORCH_POST_DEPLOY_WINDOW_MINUTES": "2",
        "ORCH_POST_DEPLOY_TICK_SECONDS": "5",
    }


def write_demo_block(values: dict[str, str]) -> None:
    """Rewrite .env's demo block (ports may differ from the last run); keep the rest."""
    dotenv = ROOT / ".env"
    block = [DEMO_BEGIN, *(f"{k}={v}" for k, v in values.items()), DEMO_END]
    dotenv.write_text("\n".join([*dotenv_lines(demo_block=False), *block]) + "\n")


def port_taken(port: str) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, int(port)))
        except OSError:
            return True
    return False


def check_ports(ports: dict[str, str]) -> None:
    """Stop before starting anything when a port is in use, naming the variable to change."""
    for variable, port in ports.items():
        if port_taken(port):
            sys.exit(
                f"port {port} on {HOST} is in use (another Stageboard, or another program).\n"
                f"Choose another with {variable}, e.g.  "
                f"{variable}={int(port) + 100} python3 dev.py up"
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
    pip("install", "--upgrade", "pip")
    pip("install", "--editable", target)
    stamp.write_text(digest)


def pip(*args: str) -> None:
    """Run pip with its output kept back: shown only when it fails (then dev.py stops)."""
    done = subprocess.run(
        [str(PYTHON), "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        sys.exit(f"pip {' '.join(args)} failed (exit code {done.returncode}); its output is above")


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
        # The demo's account or project left in the database of a real install: refuse.
        left = demo_leftovers()
        if left:
            sys.exit(
                f"{left}\nA real Plane is configured: remove them first with\n"
                f"    {PYTHON} manage.py remove_demo"
            )


def demo_leftovers() -> str:
    """What the demo left in the database ("" when nothing), as remove_demo --check says."""
    check = subprocess.run(
        [PYTHON, "manage.py", "remove_demo", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    return (check.stderr or check.stdout).strip() if check.returncode else ""


def up() -> int:
    demo = not plane_configured()
    ports = {"STAGEBOARD_PORT": PORT}
    if demo:
        ports["STAGEBOARD_PLANE_STANDIN_PORT"] = STANDIN_PORT
    check_ports(ports)
    ensure_environment("")
    ensure_dotenv()
    env, children = dict(os.environ), {}
    if demo:
        values = demo_settings()
        write_demo_block(values)
        env.update(values)
    prepare(demo=demo)
    if demo:
        standin = [PYTHON, "-m", "plane_standin", "--host", HOST, "--port", STANDIN_PORT]
        standin += ["--api-key", STANDIN_KEY, "--webhook-secret", STANDIN_WEBHOOK_SECRET]
        standin += ["--webhook-url", f"http://{HOST}:{PORT}/webhooks/plane/"]
        # The board lives in the var folder, so a restart finds the cards where they were.
        standin += ["--state", str(var_dir() / "plane-standin.json")]
        children["the Plane stand-in"] = subprocess.Popen(standin, cwd=ROOT)
        wait_for_port(STANDIN_PORT)
        manage(
            "plane_project", "add", DEMO_PROJECT, "--repo", "demo", "--workspace", "demo", env=env
        )
        # Read the demo project's states now: the first card a person moves then finds
        # To Analyse known, however fast the deliveries come.
        manage("plane_states", DEMO_PROJECT, env=env, quiet=True)
        # The demo repo's "production" is the stand-in's /demo/health, which the story
        # breaks on purpose; its rollback hook mends it.
        standin_url = f"http://{HOST}:{STANDIN_PORT}"
        manage(
            "repo", "set", "demo",
            "--health-url", f"{standin_url}/demo/health",
            "--rollback-url", f"{standin_url}/demo/rollback",
            env=env,
        )  # fmt: skip
        # An analysis check on the demo's latency: more than one measurement over 0.5 s
        # fails the deploy (`repo check test demo` shows it now).
        manage(*DEMO_CHECK, f"{standin_url}/demo/metrics", *DEMO_CHECK_LIMIT, env=env)
    children["the web server"] = subprocess.Popen(
        [PYTHON, "manage.py", "runserver", f"{HOST}:{PORT}", "--noreload"], cwd=ROOT, env=env
    )
    children["the q cluster"] = subprocess.Popen(
        [PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=env
    )
    board = "a real Plane" if not demo else f"the stand-in's http://{HOST}:{STANDIN_PORT}/board/"
    print(
        f"\nStageboard runs on http://{HOST}:{PORT}/  (dashboard: /admin/, API: /api/, "
        f"API docs: /api/docs/, health: /healthz), its board on {board}.\n"
        + ("Demo login: admin / admin. The story: python3 dev.py demo\n" if demo else "")
        + "Ctrl-C stops everything.\n",
        flush=True,
    )
    # Installed explicitly: a process started in the background inherits SIGINT ignored.
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    return supervise(children)


def supervise(children: dict[str, subprocess.Popen]) -> int:
    """Wait until Ctrl-C or until a child dies (naming it and how it ended), then stop all."""
    try:
        while not (died := dead(children)):
            time.sleep(0.5)
        for name, code in died:
            print(f"\n{name} stopped: {how_it_ended(code)}; stopping the rest.", flush=True)
    except KeyboardInterrupt:
        pass
    return stop(list(children.values()))


def dead(children: dict[str, subprocess.Popen]) -> list[tuple[str, int]]:
    """The children that have exited, by name, with their exit codes."""
    return [
        (name, child.returncode) for name, child in children.items() if child.poll() is not None
    ]


def how_it_ended(code: int) -> str:
    """An exit code in words: a negative one is the signal that ended the process."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def var_dir() -> Path:
    """Where local state lives: STAGEBOARD_VAR_DIR from the environment, else var/."""
    return Path(os.environ.get("STAGEBOARD_VAR_DIR", ROOT / "var"))


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
    # The tests make their own settings: a .env that `up` wrote (the demo's Plane) stays out.
    env = {"STAGEBOARD_ENV_FILE": str(ROOT / "var" / "no-env-file-for-tests"), **os.environ}
    return subprocess.run([PYTHON, "-m", "pytest", *pytest_args], cwd=ROOT, env=env).returncode


def token() -> int:
    """The demo account's token as a line to paste into a shell (the demo only)."""
    if plane_configured():
        sys.stderr.write(
            "dev.py token makes the demo account, and a real Plane is configured: no account "
            "is created. Make a scoped API token instead:\n"
            f"    {PYTHON} manage.py pipeline_token NAME\n"
        )
        return 1
    ensure_environment("")
    done = subprocess.run(
        [PYTHON, "manage.py", "ensure_demo_admin"], cwd=ROOT, capture_output=True, text=True
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("TOKEN=")), None)
    if done.returncode or line is None:
        sys.stderr.write(done.stderr or done.stdout)
        return done.returncode or 1
    print(line)
    return 0


def demo(args: list[str]) -> int:
    """Play the demo's story against the running `dev.py up` (see plane_standin/story.py)."""
    ensure_environment("")
    if plane_configured():
        sys.exit("dev.py demo plays against the Plane stand-in; a real Plane is configured.")
    story = [PYTHON, "-m", "plane_standin.story"]
    story += ["--stageboard", f"http://{HOST}:{PORT}", "--plane", f"http://{HOST}:{STANDIN_PORT}"]
    return subprocess.run([*story, *args], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    command, *rest = argv or ["help"]
    if command == "up":
        return up()
    if command == "test":
        return test(rest)
    if command == "demo":
        return demo(rest)
    if command == "token":
        return token()
    print(__doc__)
    return 0 if command in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
