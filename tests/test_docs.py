"""The operator's docs say what the code does: tables read from docs/operations.md."""

import re
from pathlib import Path

from plane_integration import statuses

OPERATIONS = Path(__file__).resolve().parent.parent / "docs" / "operations.md"


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first table after `heading` in docs/operations.md."""
    text = OPERATIONS.read_text()
    start = text.index(heading)
    rows = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return [row for row in rows[1:] if not re.fullmatch(r"-+", row[0])]


def test_the_statuses_table_lists_each_status_plane_states_creates_with_its_group():
    rows = table_after("### The statuses on the board")
    documented = {name: (group, means) for name, group, means in rows}
    expected = {
        statuses.DEFAULT_NAMES[key]: (statuses.GROUPS[key], statuses.MEANINGS[key])
        for key in statuses.CREATED_KEYS
    }
    assert documented == expected


# Where a documented variable's value lands when it is not a setting of the same name.
SETTING_OF = {
    "DJANGO_DEBUG": "DEBUG",
    "DJANGO_HTTPS": "HTTPS",
    "DJANGO_CONN_MAX_AGE": "DATABASES.default.CONN_MAX_AGE",
    "Q_WORKERS": "Q_CLUSTER.workers",
    "Q_TIMEOUT": "Q_CLUSTER.timeout",
    "Q_RETRY": "Q_CLUSTER.retry",
    "Q_MAX_ATTEMPTS": "Q_CLUSTER.max_attempts",
}
# Defaults that are words, not values (a file in var/, a year, ...): checked by reading.
NOT_LITERAL = re.compile(r"`|none|auto|a year|SQLite|file cache|MiB|localhost")

PROBE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pipeline.settings")
from django.conf import settings
out = {}
for name, where in json.loads(sys.argv[1]).items():
    value = settings
    for part in where.split("."):
        value = value[part] if isinstance(value, dict) else getattr(value, part, None)
    out[name] = value
print(json.dumps(out, default=str))
"""


def documented_defaults() -> dict[str, str]:
    """Each variable of the settings table with its documented default (`A` / `B` pair up)."""
    pairs = {}
    for setting, default, _ in table_after("## Settings"):
        names = re.findall(r"`([A-Z][A-Z0-9_]+)`", setting)
        if NOT_LITERAL.search(default):
            continue
        values = [v.strip() for v in default.split(" / ")]
        if len(values) == 1:
            values *= len(names)
        assert len(values) == len(names), f"{setting}: {default}"
        pairs.update(zip(names, values, strict=True))
    return pairs


def test_the_settings_table_gives_each_settings_real_default(tmp_path):
    import json
    import os
    import subprocess
    import sys

    documented = documented_defaults()
    assert len(documented) > 30
    ours = ("DATABASE_", "REDIS_URL", "DJANGO_", "Q_", "STAGEBOARD_", "HEALTHZ_", "PLANE_",
            "LOG_", "ORCH_", "NOTIFY_", "METRICS_", "RECONCILE_", "DORA_", "GITHUB_", "GITLAB_",
            "FORGEJO_", "TIME_ZONE")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(STAGEBOARD_ENV_FILE=str(tmp_path / "none.env"), STAGEBOARD_VAR_DIR=str(tmp_path))
    where = {name: SETTING_OF.get(name, name) for name in documented}
    probe = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(where)],
        cwd=OPERATIONS.parent.parent, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    real = json.loads(probe.stdout)
    wrong = {}
    for name, shown in documented.items():
        value = real[name]
        if shown == "unset":
            ok = value in ("", None, [])
        elif shown in ("true", "false", "on", "off"):
            ok = value is (shown in ("true", "on"))
        elif re.fullmatch(r"[\d.]+", shown):
            ok = value is not None and float(value) == float(shown)
        else:
            ok = str(value) == shown
        if not ok:
            wrong[name] = (shown, value)
    assert not wrong, f"documented default, real default: {wrong}"
