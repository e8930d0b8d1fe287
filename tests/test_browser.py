"""An operator's first minutes, in a real browser: headless Chromium drives the admin.

Debian's `chromium` and `chromium-driver` through Selenium, against real processes (the
web server, a q cluster, the Plane stand-in) set up as `dev.py up` sets up its demo. It
logs in, reads the dashboard, approves a deploy from it, turns a kill-switch off and sees
the banner, and moves a card on the stand-in's board to start a task.

Set STAGEBOARD_SCREENSHOTS=docs/img to refresh the README's screenshots.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from django.db import connection

import dev
from tests.processes import ROOT, wait_for
from tests.test_demo_story import demo  # noqa: F401  (the running demo, a fixture)

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)

pytestmark = [
    pytest.mark.browser,
    # Once per CI run: the SQLite pass (the processes run on their own SQLite file anyway).
    pytest.mark.skipif(connection.vendor != "sqlite", reason="runs once, on the SQLite pass"),
]


@pytest.fixture
def browser():
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("CI"):
            pytest.fail("CI needs chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="stageboard-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver, name: str) -> None:
    target = os.environ.get("STAGEBOARD_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(target) / name))


def test_an_operator_runs_the_demo_from_the_browser(demo, browser):  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import Select, WebDriverWait

    base, plane = demo["base"], demo["plane"]
    api = requests.Session()
    api.headers["Authorization"] = f"Token {demo['token']}"
    waiting = "0de00000-0000-4000-8000-0000000000a2"  # DEMO-2
    api.post(
        f"{base}/api/tasks/",
        json={"work_item_id": waiting, "project_id": dev.DEMO_PROJECT, "title": "Checkout v2",
              "repo": "demo"},
        timeout=5,
    )  # fmt: skip
    for stage in ("development", "code_review", "deploy"):
        api.post(f"{base}/api/tasks/{waiting}/advance/", json={"stage": stage}, timeout=5)
    api.post(f"{base}/api/tasks/{waiting}/deploy/request-approval/", json={}, timeout=5)

    # Log in; the front door leads to the dashboard.
    browser.get(f"{base}/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    panel = browser.find_element(By.ID, "panel-approvals")
    assert "Deploys awaiting approval (1)" in panel.text
    assert "Checkout v2" in panel.text
    assert not browser.find_elements(By.ID, "kill-switch-banner")

    # Approve the deploy from the dashboard.
    panel.find_element(By.CSS_SELECTOR, f'button[name=approve][data-task="{waiting}"]').click()
    assert "deploy approved" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    task = api.get(f"{base}/api/tasks/{waiting}/", timeout=5).json()
    assert "admin:admin" in [change["caller"] for change in task["history"]]
    assert "Nothing waits for an approval" in browser.find_element(By.ID, "panel-approvals").text

    # Turn the guard's kill-switch off in the switchboard: the dashboard says so in red.
    browser.get(f"{base}/admin/pipeline/switchboard/")
    switch = browser.find_element(By.ID, "id_deploy_status_guard_enabled")
    assert switch.is_selected()
    switch.click()
    browser.find_element(By.ID, "id_reason").send_keys("a stale CI job is being fixed")
    form_page = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.NAME, "_save").click()
    # Navigating on at once could cancel the form's POST on a busy machine: wait until the
    # answer to it replaced the page.
    WebDriverWait(browser, 10).until(staleness_of(form_page))
    browser.get(f"{base}/admin/")
    banner = browser.find_element(By.ID, "kill-switch-banner")
    assert "the deploy status guard" in banner.text
    assert banner.value_of_css_property("background-color") == "rgba(185, 28, 28, 1)"

    # A person moves a card to To Analyse on the stand-in's board: its task starts.
    started = "0de00000-0000-4000-8000-0000000000a1"  # DEMO-1
    browser.get(f"{plane.url}/board/?refresh=0")
    card = browser.find_element(By.ID, f"item-{started}")
    Select(card.find_element(By.NAME, "state")).select_by_visible_text("To Analyse")
    board_page = browser.find_element(By.TAG_NAME, "html")
    card.find_element(By.CSS_SELECTOR, "button.move").click()
    WebDriverWait(browser, 10).until(staleness_of(board_page))  # the board after the move
    column = browser.find_element(By.CSS_SELECTOR, 'section[data-state="To Analyse"]')
    assert column.find_elements(By.ID, f"item-{started}")
    wait_for(
        lambda: api.get(f"{base}/api/tasks/{started}/", timeout=5).status_code == 200,
        30,
        "the task to start",
    )

    def shows_analysis() -> bool:
        browser.get(f"{plane.url}/board/?refresh=0")
        column = browser.find_element(By.CSS_SELECTOR, 'section[data-state="Analysis"]')
        return bool(column.find_elements(By.ID, f"item-{started}"))

    wait_for(shows_analysis, 30, "the card to show Analysis")
    screenshot(browser, "standin-board.png")

    browser.get(f"{base}/admin/pipeline/task/")
    assert "Demo item 1" in browser.find_element(By.ID, "result_list").text
    browser.get(f"{base}/admin/")
    time.sleep(0.2)
    assert "analysis" in browser.find_element(By.ID, "panel-stages").text
    screenshot(browser, "dashboard.png")


# The admin's pages an operator reads most, each no wider than a 1,400 px window.
WIDE_PAGES = (
    "/admin/",
    "/admin/pipeline/task/",
    "/admin/pipeline/deployment/",
    "/admin/monitoring/monitorwindow/",
    "/admin/git_hosts/gitevent/",
    "/admin/pipeline/switchboard/",
)


SIDEWAYS = """
const found = [];
const page = document.documentElement;
if (page.scrollWidth > window.innerWidth) found.push(`page ${page.scrollWidth}px`);
for (const box of document.querySelectorAll("#container *")) {
  const overflow = getComputedStyle(box).overflowX;
  if ((overflow === "auto" || overflow === "scroll") && box.scrollWidth > box.clientWidth + 1) {
    const name = `${box.tagName.toLowerCase()}#${box.id}.${box.className}`;
    found.push(`${name} ${box.scrollWidth}px in ${box.clientWidth}px`);
  }
}
return found;
"""


def test_admin_pages_fit_a_1400_px_window(demo, browser):  # noqa: F811
    """After the demo's story (deployments, a rolled-back window, Git events), every page
    fits: short SHAs, identifiers instead of UUIDs, columns that wrap."""
    from selenium.webdriver.common.by import By

    base, plane = demo["base"], demo["plane"]
    story = subprocess.run(
        [
            sys.executable, "-m", "plane_standin.story", "--unattended", "--timeout", "60",
            "--stageboard", base, "--plane", plane.url, "--token", demo["token"],
        ],
        cwd=ROOT, env=demo["env"], capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert story.returncode == 0, story.stdout + story.stderr
    browser.set_window_size(1400, 1000)
    browser.get(f"{base}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    api = requests.Session()
    api.headers["Authorization"] = f"Token {demo['token']}"
    tasks = api.get(f"{base}/api/tasks/", timeout=5).json()["results"]
    done = next(t for t in tasks if t["stage"] == "done")
    too_wide, inner = {}, 0

    def measure(page: str) -> None:
        nonlocal inner
        assert browser.find_elements(By.ID, "content"), f"{page}: {browser.page_source[:3000]}"
        inner = browser.execute_script("return window.innerWidth")
        # The page itself, and any box that scrolls sideways inside it (Django's result
        # lists and inlines do, rather than widen the page).
        wide = browser.execute_script(SIDEWAYS)
        if wide:
            too_wide[page] = wide

    for page in (
        *WIDE_PAGES,
        f"/admin/pipeline/task/{done['work_item_id']}/change/",
        "/admin/dora/",
    ):
        browser.get(f"{base}{page}")
        measure(page)
        rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody th a")
        if rows:  # a list: its first row's page too
            rows[0].click()
            measure(f"{page} (first row)")
    assert not too_wide, f"wider than the {inner} px window: {too_wide}"


def test_the_dashboards_top_line_tells_the_worst_news_first(demo, browser):  # noqa: F811
    """All good; then a rollback whose hook failed (red, with its banner); then a dead q
    cluster (red, first). Each state is a screenshot with STAGEBOARD_SCREENSHOTS."""
    import psutil
    from selenium.webdriver.common.by import By

    base = demo["base"]
    browser.get(f"{base}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("admin")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    def verdict() -> tuple[str, str]:
        browser.get(f"{base}/admin/")
        line = browser.find_element(By.ID, "verdict")
        return line.get_attribute("data-verdict"), line.text

    wait_for(lambda: verdict()[0] == "green", 30, "the top line to say all good")
    assert verdict()[1].startswith("All good")
    screenshot(browser, "verdict-all-good.png")

    # A deploy watched, judged DEGRADED, its rollback hook unreachable: as the monitor leaves it.
    made = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", FAILED_ROLLBACK],
        cwd=ROOT, env=demo["env"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    colour, text = verdict()
    assert colour == "red" and "rollback" in text.lower(), text
    screenshot(browser, "verdict-rollback-failed.png")

    # The q cluster dies: the worst news, on top.
    me = psutil.Process()
    for child in me.children(recursive=True):
        if "qcluster" in " ".join(child.cmdline()):
            child.kill()

    def cluster_first() -> bool:
        colour, text = verdict()
        lines = [line for line in text.splitlines() if line.strip()]
        return colour == "red" and len(lines) > 1 and "q cluster" in lines[1]

    wait_for(cluster_first, 60, "the dead q cluster at the top")
    screenshot(browser, "verdict-no-cluster.png")


FAILED_ROLLBACK = """
from django.utils import timezone
from monitoring.models import MonitorWindow
from pipeline.models import Deployment, Task
now = timezone.now()
task = Task.objects.create(
    work_item_id="0de00000-0000-4000-8000-0000000000f1", project_id="0de00000-0000-4000-8000-"
    "000000000001", title="Broken release", repo="demo", stage="done", deploy_phase="succeeded")
MonitorWindow.objects.create(
    task=task, cycle=1, repo="demo", opened_at=now, closes_at=now, state="closed",
    verdict="DEGRADED", action="rollback", action_state="failed",
    action_result="the rollback URL could not be reached")
Deployment.objects.create(
    task=task, cycle=1, repo="demo", finished_at=now, outcome="rollback_failed")
"""
