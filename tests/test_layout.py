"""The apps depend one way: the board never imports the monitor, the stand-in is apart."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_module_of_the_board_imports_the_monitor():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "monitoring"
        )
        for path in (ROOT / "plane_integration").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_the_monitor_imports_nothing_of_the_board():
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "plane_integration"
        )
        for path in (ROOT / "monitoring").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


def test_pipeline_the_lowest_layer_imports_no_app_above_it():
    above = {"plane_integration", "monitoring", "git_hosts", "operations"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] in above
        )
        for path in (ROOT / "pipeline").rglob("*.py")
    }
    assert {path: mods for path, mods in offenders.items() if mods} == {}


@pytest.mark.django_db(transaction=True)  # warm_up closes the connections
def test_the_cluster_loads_every_drain_an_app_registered_without_importing_the_app():
    from pipeline import drains
    from pipeline.management.commands.qcluster import warm_up
    from plane_integration.ingest import DRAIN

    assert DRAIN in drains.registered()  # plane_integration registered its own when ready
    sys.modules.pop("colorsys", None)
    drains.register("colorsys.rgb_to_hls")  # a module nothing here has loaded
    drains.register("colorsys.rgb_to_hls")
    try:
        assert drains.registered().count("colorsys.rgb_to_hls") == 1
        warm_up()
        assert "colorsys" in sys.modules
    finally:
        drains._registered.pop("colorsys.rgb_to_hls")
    with pytest.raises(ValueError):
        drains.register("no_dot")


def test_the_stand_in_lives_outside_the_board_and_imports_nothing_of_the_project():
    assert not list((ROOT / "plane_integration").rglob("*standin*"))
    assert (ROOT / "plane_standin" / "server.py").exists()
    project = {"pipeline", "plane_integration", "monitoring", "git_hosts", "operations", "django"}
    for path in (ROOT / "plane_standin").rglob("*.py"):
        assert not {m.split(".")[0] for m in imported_modules(path)} & project, path


def test_the_stand_ins_parts_import_one_way_the_server_puts_them_together():
    # No circle: the board page, the API, the controls and the world never import the server,
    # and the board page imports no other part (it says what it needs as a Protocol).
    parts = {p.stem: imported_modules(p) for p in (ROOT / "plane_standin").glob("*.py")}
    for name in ("board", "api", "controls", "world"):
        assert "plane_standin.server" not in parts[name], name
    assert not {m for m in parts["board"] if m.startswith("plane_standin")}
    server = (ROOT / "plane_standin" / "server.py").read_text()
    assert "from plane_standin import board" in server
    assert {"plane_standin.api", "plane_standin.controls", "plane_standin.world"} <= parts["server"]


def test_the_monitor_answers_the_boards_window_questions_through_pipeline(make_task):
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.models import MonitorWindow
    from pipeline import windows

    task = make_task(stage="done", deploy_phase="succeeded")
    assert windows.window_facts(task) is None and not windows.window_active(task)
    now = timezone.now()
    MonitorWindow.objects.create(
        task=task, cycle=1, repo="shop", opened_at=now, closes_at=now + timedelta(minutes=1)
    )
    assert windows.window_active(task)
    assert windows.window_facts(task) == windows.WindowFacts(active=True, verdict=None)
