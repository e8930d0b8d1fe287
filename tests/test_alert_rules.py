"""docs/alerts.yml is valid for Prometheus, and every metric it reads is served by /metrics."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

RULES = Path(__file__).resolve().parent.parent / "docs" / "alerts.yml"


def test_promtool_accepts_the_alert_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("needs promtool: apt-get install prometheus (.ci/run installs it)")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.django_db
def test_every_metric_the_rules_read_is_served(client, settings):
    settings.METRICS_BEARER_TOKEN = "t"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()
    served = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
    used = set(re.findall(r"\b(stageboard_[a-z_]+)", RULES.read_text()))
    assert used <= served, used - served
    assert 'stageboard_build_info{version="' in text
