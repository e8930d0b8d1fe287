"""GET /healthz: the database and the q cluster, as a load balancer sees them."""

import json
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

pytestmark = pytest.mark.django_db


def report_cluster(status=Conf.IDLE, age=timedelta(0), cluster_id="c1"):
    """Publish a cluster status the way a running cluster's sentinel does."""
    stat = Status(pid=123, cluster_id=cluster_id)
    stat.status = status
    stat.workers = [1, 2]
    stat.timestamp = timezone.now() - age
    get_broker().set_stat(Stat.get_key(cluster_id), SignedPackage.dumps(stat, True), 3)


def test_it_is_unavailable_until_a_cluster_reports(client):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cluster"] == {
        "ok": False,
        "error": "no q cluster has reported in the last 30 s",
    }


def test_it_is_healthy_when_the_database_answers_and_a_cluster_reported(client):
    report_cluster()
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["cluster"]["clusters"][0]["workers"] == 2
    assert response["Cache-Control"].startswith("max-age=0")


def test_a_stopped_cluster_does_not_count(client):
    report_cluster(status=Conf.STOPPED)
    assert client.get("/healthz").status_code == 503


def test_a_cluster_that_reported_long_ago_does_not_count(client, settings):
    settings.HEALTHZ_CLUSTER_MAX_AGE = 10
    report_cluster(age=timedelta(seconds=11))
    body = client.get("/healthz").json()
    assert body["checks"]["cluster"]["error"] == "no q cluster has reported in the last 10 s"


def test_a_database_that_does_not_answer_is_named_without_its_error(client, monkeypatch, caplog):
    report_cluster()

    def refuse(*args, **kwargs):
        raise OperationalError('connection to "db.internal" (10.0.0.5) refused for "app"')

    monkeypatch.setattr("pipeline.health.connection.cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {
        "ok": False,
        "error": "database did not answer",
    }
    assert "db.internal" not in response.content.decode()  # anyone can read /healthz
    assert "db.internal" in caplog.text  # the operator reads it in the log


def test_a_cluster_status_that_cannot_be_read_is_named_without_its_error(client, monkeypatch):
    def broken():
        raise ConnectionError("redis://:hunter2@cache.internal:6379 refused")

    monkeypatch.setattr("pipeline.health.Stat.get_all", broken)
    body = client.get("/healthz").json()
    assert body["checks"]["cluster"] == {
        "ok": False,
        "error": "could not read the q cluster status",
    }
    assert "hunter2" not in json.dumps(body)


def test_it_needs_no_login_and_only_answers_get(client):
    assert client.post("/healthz").status_code == 405


def test_the_version_of_pyproject_is_in_healthz_the_metrics_and_the_admin_footer(
    client, admin_client, settings
):
    import tomllib

    from tests.processes import ROOT

    expected = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert client.get("/healthz").json()["version"] == expected
    settings.METRICS_BEARER_TOKEN = "scrape"
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape").content.decode()
    assert f'stageboard_build_info{{version="{expected}"}} 1.0' in metrics
    page = admin_client.get("/admin/pipeline/task/").content.decode()
    assert '<small id="stageboard-version"' in page and f"Stageboard {expected}" in page
