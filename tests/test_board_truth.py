"""The board-truth simulation in CI: small size, fixed seeds (the full size is on demand,
`docs/benchmarks.md`).

Each run is its own process on its own fresh SQLite file with its own Plane stand-in, so
it runs once, on the SQLite leg of CI: the PostgreSQL leg would run the very same thing
again. The four runs go at once (they wait on timeouts and Plane's window as much as they
compute), which keeps the wall time near that of the slowest.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tests" / "benchmarks" / "board_truth.py"
TASKS, EVENTS = 100, 2000

pytestmark = pytest.mark.skipif(
    connection.vendor != "sqlite",
    reason="runs in its own process on its own SQLite file: once per CI run is enough",
)


def start(seed: int, guard: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    command = [sys.executable, str(SCRIPT), "--seed", str(seed), "--tasks", str(TASKS)]
    command += ["--events", str(EVENTS), "--guard", guard, "--json"]
    return subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def figures(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=300)
    lines = out.strip().splitlines()
    assert lines, err[-3000:]
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def runs() -> dict:
    started = {(seed, "on"): start(seed, "on") for seed in (11, 12, 13)}
    started[(11, "off")] = start(11, "off")
    return {key: figures(process) for key, process in started.items()}


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_with_the_guard_the_board_tells_the_truth(runs, seed):
    result = runs[(seed, "on")]
    assert set(result) == {
        "seed", "tasks", "events", "flaps", "board_equals_truth_pct", "lost_updates",
        "plane_calls", "rate_limited", "wall_seconds",
    }  # fmt: skip
    assert (result["seed"], result["tasks"], result["events"]) == (seed, TASKS, EVENTS)
    assert result["flaps"] == 0
    assert result["board_equals_truth_pct"] == 100
    assert result["lost_updates"] == 0
    assert result["rate_limited"] == 0
    assert result["plane_calls"] > TASKS  # the schedule really drove the board


def test_without_the_guard_the_same_seed_flaps(runs):
    """The flap count is a real measurement: stale callers do reach the board unguarded,
    and the sync and the final sweep still put the truth back afterwards."""
    result = runs[(11, "off")]
    assert result["flaps"] > 0
    assert result["board_equals_truth_pct"] == 100
    assert result["lost_updates"] == 0
