# ruff: noqa: F811  (the monitor's fixtures are imported from tests/test_monitor.py)
"""Analysis checks as operators meet them: `repo check ...`, windows ticked by the cluster's
own functions, a real Prometheus scraping an exporter of the test's own, a real HTTP
endpoint, the admin's window page and /metrics. The provider's corner cases are tested
against recorded answers of Prometheus's HTTP API."""

import json
import time
from io import StringIO
from unittest import mock

import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from monitoring import checks
from monitoring.checks import DeployFacts, baseline_query, fill, parse_prometheus
from monitoring.models import Check, CheckBaseline, CheckMeasurement, MonitoredRepo
from pipeline.models import Deployment
from tests import prometheus
from tests.prometheus import Exporter, Prometheus

# The monitor's fixtures: a monitored repo's deploy, its loopback endpoints, and ticks.
from tests.test_monitor import (  # noqa: F401
    Endpoint,
    deployed,
    endpoints,
    monitor,
    rollbacks_run,
    tick,
)

pytestmark = pytest.mark.django_db
LATENCY = "stageboard_test_latency_seconds"


def repo_command(*args) -> str:
    out = StringIO()
    call_command("repo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def exporter():
    served = Exporter()
    yield served
    served.stop()


@pytest.fixture(scope="module")
def prometheus_server(exporter, tmp_path_factory):
    if not prometheus.available():
        pytest.skip(
            f"no Prometheus binary at {prometheus.BINARY} (Debian: apt-get install prometheus)"
        )
    server = Prometheus(tmp_path_factory.mktemp("prometheus"), exporter)
    yield server
    server.stop()


@pytest.fixture
def prom(prometheus_server, settings):
    settings.PROMETHEUS_URL = prometheus_server.url
    settings.PROMETHEUS_BEARER_TOKEN = ""
    return prometheus_server


@pytest.fixture
def json_endpoint(endpoints):
    """A loopback endpoint answering `document` as JSON."""

    def make(document, status=200) -> Endpoint:
        return endpoints(then=status, body=json.dumps(document).encode())

    return make


# --- the Prometheus provider against recorded answers ------------------------------------

VECTOR = {
    "status": "success",
    "data": {
        "resultType": "vector",
        "result": [{"metric": {"job": "shop"}, "value": [1733390000.0, "0.21"]}],
    },
}


def answer(**data) -> str:
    return json.dumps({"status": "success", "data": data})


@pytest.mark.parametrize(
    ("status", "body", "value", "error"),
    [
        (200, json.dumps(VECTOR), 0.21, ""),
        (200, answer(resultType="scalar", result=[1733390000.0, "3"]), 3.0, ""),
        (200, answer(resultType="vector", result=[]), None, "no data (an empty result)"),
        (
            200,
            answer(resultType="vector", result=[{"metric": {}, "value": [1, "NaN"]}]),
            None,
            "no data (NaN)",
        ),
        (
            200,
            answer(
                resultType="vector",
                result=[{"metric": {"i": "1"}, "value": [1, "1"]}] * 2,
            ),
            None,
            "2 series where one number is needed",
        ),
        (
            200,
            answer(resultType="matrix", result=[{"metric": {}, "values": [[1, "1"]]}]),
            None,
            "a matrix result where one number is needed",
        ),
        (
            400,
            json.dumps(
                {
                    "status": "error",
                    "errorType": "bad_data",
                    "error": "1:14: parse error: unclosed left parenthesis",
                }
            ),
            None,
            "Prometheus answered 400: bad_data: 1:14: parse error: unclosed left parenthesis",
        ),
        (503, "Service Unavailable", None, "Prometheus answered 503 without JSON"),
    ],
)
def test_prometheus_answers_give_one_number_or_say_why_not(status, body, value, error):
    reading = parse_prometheus(status, body)
    assert (reading.value, reading.error) == (value, error)


def test_an_unreachable_or_slow_prometheus_is_unmeasured(settings, endpoints):
    slow = endpoints(then=200, body=json.dumps(VECTOR).encode(), delay=1.0)
    settings.PROMETHEUS_URL = slow.url.removesuffix("/health")
    reading = checks.read_prometheus("up", None, timeout=0.2)
    assert reading.value is None and reading.error.startswith("Prometheus unreachable")
    settings.PROMETHEUS_URL = ""
    reading = checks.read_prometheus("up", None, timeout=0.2)
    assert reading.value is None and "PROMETHEUS_URL is not set" in reading.error


def test_prometheus_is_asked_at_a_time_with_its_credentials(settings):
    settings.PROMETHEUS_URL = "https://reader:s3cret@prom.example.com:9443/prom/"
    settings.PROMETHEUS_BEARER_TOKEN = ""
    recorded = mock.Mock(status_code=200, text=json.dumps(VECTOR))
    at = timezone.now()
    with mock.patch("monitoring.checks.requests.get", return_value=recorded) as get:
        assert checks.read_prometheus("up", at, timeout=1).value == 0.21
    url, kwargs = get.call_args.args[0], get.call_args.kwargs
    assert url == "https://prom.example.com:9443/prom/api/v1/query"
    assert kwargs["auth"] == ("reader", "s3cret")
    assert kwargs["params"] == {"query": "up", "time": f"{at.timestamp():.3f}"}
    settings.PROMETHEUS_URL = "https://prom.example.com"
    settings.PROMETHEUS_BEARER_TOKEN = "t0ken"
    with mock.patch("monitoring.checks.requests.get", return_value=recorded) as get:
        checks.read_prometheus("up", None, timeout=1)
    assert get.call_args.kwargs["headers"] == {"Authorization": "Bearer t0ken"}
    assert get.call_args.kwargs["auth"] is None


def test_placeholders_are_filled_and_promql_braces_kept():
    query = 'rate(http_requests_total{job="{repo}",env="{environment}",sha="{commit_sha}"}[5m])'
    filled = fill(query, DeployFacts("shop", "production", "abc123"))
    assert filled == 'rate(http_requests_total{job="shop",env="production",sha="abc123"}[5m])'
    assert baseline_query("up", 30) == "avg_over_time((up)[30m:])"


# --- the HTTP provider against a real endpoint -------------------------------------------


@pytest.mark.parametrize(
    ("document", "path", "value", "error"),
    [
        ({"queue": {"depth": 12}}, "$.queue.depth", 12.0, ""),
        ({"p99": "0.25"}, "$.p99", 0.25, ""),
        ({"queue": {}}, "$.queue.depth", None, "no data: nothing at $.queue.depth"),
        ({"q": [1, 2]}, "$.q[*]", None, "2 values at $.q[*] where one number is needed"),
        ({"q": "busy"}, "$.q", None, "not a number at $.q: busy"),
        ({"q": True}, "$.q", None, "not a number at $.q: True"),
        ({"q": None}, "$.q", None, "not a number at $.q: None"),
    ],
)
def test_an_http_check_reads_one_number_at_its_path(json_endpoint, document, path, value, error):
    served = json_endpoint(document)
    reading = checks.read_http(served.url, path, timeout=2)
    assert (reading.value, reading.error) == (value, error)


def test_an_http_check_without_a_good_answer_is_unmeasured(json_endpoint, endpoints):
    assert checks.read_http(json_endpoint({}, status=500).url, "$.x", 2).error == "answered 500"
    not_json = endpoints(then=200, body=b"<html>")
    assert "without JSON" in checks.read_http(not_json.url, "$.x", 2).error
    gone = endpoints()
    gone.stop()
    assert checks.read_http(gone.url, "$.x", 1).error.startswith("unreachable")


# --- the commands ------------------------------------------------------------------------


@pytest.fixture
def shop(db):
    return MonitoredRepo.objects.create(name="shop", health_url="http://127.0.0.1:1/health")


def test_check_add_list_change_remove(shop, json_endpoint):
    served = json_endpoint({"queue": {"depth": 3}})
    out = repo_command(
        "check", "add", "shop", "queue", "--http", served.url, "--json-path", "$.queue.depth",
        "--max", "100", "--failure-limit", "2",
    )  # fmt: skip
    assert out.startswith("added shop queue")
    check = Check.objects.get(repo=shop, name="queue")
    assert (check.provider, check.condition, check.threshold, check.failure_limit) == (
        "http",
        "max",
        100,
        2,
    )
    out = repo_command(
        "check", "add", "shop", "queue", "--http", served.url, "--json-path", "$.queue.depth",
        "--min", "1",
    )  # fmt: skip
    assert out.startswith("changed shop queue") and Check.objects.count() == 1
    check.refresh_from_db()
    assert (check.condition, check.threshold, check.failure_limit) == ("min", 1, 2)
    listed = repo_command("check", "list", "shop")
    assert f"queue  --http {served.url} --json-path $.queue.depth  --min 1" in listed
    assert repo_command("check", "remove", "shop", "queue") == "removed shop queue\n"
    assert "has no checks" in repo_command("check", "list", "shop")
    with pytest.raises(CommandError, match="has no check 'queue'"):
        repo_command("check", "remove", "shop", "queue")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--http", "http://x.test/", "--json-path", "$[", "--max", "1"], "bad JSONPath"),
        (["--http", "http://x.test/", "--max", "1"], "--http needs --json-path"),
        (["--http", "http://x.test/", "--json-path", "$.a"], "one of the arguments --max"),
        (["--max", "1"], "one of the arguments --prometheus --http is required"),
        (
            ["--http", "http://x.test/", "--json-path", "$.a", "--max-vs-baseline", "2"],
            "no history to take a baseline from",
        ),
        (["--prometheus", "up", "--max", "1"], "PROMETHEUS_URL is not set"),
        (["--http", "http://x.test/", "--json-path", "$.a", "--max", "1", "--min", "0"], "not"),
        (["--http", "http://x.test/", "--json-path", "$.a", "--max", "nan"], "not NaN"),
        (
            [
                "--http",
                "http://x.test/",
                "--json-path",
                "$.a",
                "--max",
                "1",
                "--failure-limit",
                "-1",
            ],
            "failure_limit",
        ),  # fmt: skip
    ],
)
def test_a_bad_check_is_refused_and_nothing_stored(shop, settings, args, message):
    settings.PROMETHEUS_URL = ""
    with pytest.raises(CommandError, match=message.replace("[", r"\[")):
        repo_command("check", "add", "shop", "c", *args)
    assert not Check.objects.exists()


def test_a_check_needs_a_known_repo(db):
    with pytest.raises(CommandError, match="no repo 'nowhere'"):
        repo_command("check", "add", "nowhere", "c", "--prometheus", "up", "--max", "1")


def test_prometheus_refuses_an_invalid_query_and_nothing_is_stored(prom, shop):
    with pytest.raises(CommandError, match="Prometheus refuses the query: .*parse error"):
        repo_command("check", "add", "shop", "errors", "--prometheus", "rate(x[5m]", "--max", "1")
    assert not Check.objects.exists()
    repo_command("check", "add", "shop", "errors", "--prometheus", "rate(x[5m])", "--max", "1")
    assert Check.objects.get().query == "rate(x[5m])"


def test_check_test_is_a_dry_run_with_values_conditions_and_baselines(
    prom, exporter, shop, json_endpoint
):
    exporter.values[f'{LATENCY}{{repo="dry"}}'] = 0.25
    prom.wait_for(f'{LATENCY}{{repo="dry"}}', 0.25)
    time.sleep(1.5)  # a few scrapes of history for the baseline
    served = json_endpoint({"queue": {"depth": 40}})
    repo_command(
        "check", "add", "shop", "p99", "--prometheus", f'{LATENCY}{{repo="dry"}}',
        "--max-vs-baseline", "2", "--baseline-minutes", "5",
    )  # fmt: skip
    repo_command(
        "check", "add", "shop", "queue", "--http", served.url, "--json-path", "$.queue.depth",
        "--max", "10",
    )  # fmt: skip
    repo_command("check", "add", "shop", "empty", "--prometheus", "nothing_here", "--max", "1")
    out = StringIO()
    with pytest.raises(CommandError, match="2 of 3 checks did not pass"):
        call_command("repo", "check", "test", "shop", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "empty  no value  > 1  unmeasured (no data (an empty result))"
    assert (
        lines[1] == "p99  0.25  > 2 × baseline 0.25  success  baseline 0.25 (the 5 min before now)"
    )
    assert lines[2] == "queue  40  > 10  failure"
    assert not CheckMeasurement.objects.exists() and not CheckBaseline.objects.exists()


# --- windows ticked by the cluster -------------------------------------------------------


def add_http_check(repo, name, url, *condition, path="$.value"):
    repo_command("check", "add", repo, name, "--http", url, "--json-path", path, *condition)


def test_a_check_over_its_limit_more_than_its_failure_limit_is_degraded(
    deployed, monitor, plane, json_endpoint, tick
):
    served = json_endpoint({"queue": {"depth": 50}})
    task, window = deployed()
    add_http_check("shop", "queue", served.url, "--max", "10", path="$.queue.depth")
    tick()
    window.refresh_from_db()
    assert window.state == "active"  # one failure: at the failure limit (1), not over it
    tick()
    window.refresh_from_db()
    assert (window.verdict, window.action) == ("DEGRADED", "rollback")
    assert window.verdict_reason == "queue: 50 > 10 in 2 of 2 measurements (failure limit 1)"
    assert rollbacks_run(monitor) == 1
    [comment] = plane.comments(str(task.work_item_id))
    assert "queue: 50 &gt; 10 in 2 of 2 measurements" in comment["comment_html"]
    assert "queue (&gt; 10) failed 2 of 2, values 50, 50" in comment["comment_html"]


def test_a_check_without_data_is_inconclusive_and_never_rolls_back(
    deployed, monitor, endpoints, tick
):
    gone = endpoints()
    gone.stop()
    _, window = deployed()
    add_http_check("shop", "queue", gone.url, "--max", "10")
    tick(5)
    window.refresh_from_db()
    assert window.state == "active"  # unmeasured is never a failure
    tick(closing=True)
    window.refresh_from_db()
    assert (window.verdict, window.action) == ("INCONCLUSIVE", "alert_only")
    assert "queue: only 0 of 6 measurements had a value (need 4)" in window.verdict_reason
    assert rollbacks_run(monitor) == 0
    assert set(CheckMeasurement.objects.values_list("result", flat=True)) == {"unmeasured"}
    assert CheckMeasurement.objects.first().error.startswith("unreachable")


def test_a_repo_with_checks_and_no_health_url_is_judged_by_its_checks(
    deployed, json_endpoint, tick
):
    served = json_endpoint({"value": 3})
    _, window = deployed(health_url="")
    add_http_check("shop", "queue", served.url, "--max", "10")
    tick(4)
    tick(closing=True)
    window.refresh_from_db()
    assert window.verdict == "HEALTHY"
    assert not window.probes.exists()  # no health URL: nothing probed, nothing inconclusive


def test_a_prometheus_check_against_its_baseline_before_the_deploy(
    prom, exporter, deployed, tick, admin_client, client, settings
):
    series = f'{LATENCY}{{repo="shop"}}'
    exporter.values[series] = 0.2
    prom.wait_for(series, 0.2)
    time.sleep(2)  # history before the deploy
    started = timezone.now()
    exporter.values[series] = 0.6  # the deploy made it slower
    prom.wait_for(series, 0.6)
    task, window = deployed()
    Deployment.objects.filter(window_id=window.pk).update(started_at=started)
    repo_command(
        "check", "add", "shop", "p99", "--prometheus", f'{LATENCY}{{repo="{{repo}}"}}',
        "--max-vs-baseline", "2", "--baseline-minutes", "1",
    )  # fmt: skip
    tick()
    window.refresh_from_db()
    assert window.state == "active"
    [baseline] = CheckBaseline.objects.all()
    assert (baseline.check_name, baseline.value, baseline.minutes) == ("p99", 0.2, 1)
    assert baseline.evaluated_at == started
    tick()
    window.refresh_from_db()
    assert window.verdict == "DEGRADED"
    assert window.verdict_reason.startswith("p99: 0.6 > 2 × baseline 0.2 in 2 of 2 measurements")
    assert CheckBaseline.objects.count() == 1  # asked once per window
    assert (
        list(CheckMeasurement.objects.values_list("value", "baseline", "bound"))
        == [(0.6, 0.2, 0.4)] * 2
    )

    page = admin_client.get(f"/admin/monitoring/monitorwindow/{window.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html and "p99" in html and "baseline 0.2" in html
    assert "0.6 (failure)" in html  # the points say what they were

    settings.METRICS_BEARER_TOKEN = "scrape"
    metrics = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape").content.decode()
    assert 'stageboard_check_measurements{check="p99",repo="shop",result="failure"} 2.0' in metrics


def test_a_baseline_that_cannot_be_had_is_asked_again_and_leaves_no_verdict(
    deployed, tick, settings, endpoints
):
    down = endpoints()
    down.stop()
    settings.PROMETHEUS_URL = down.url.removesuffix("/health")
    _, window = deployed()
    shop = MonitoredRepo.objects.get(name="shop")
    # Stored directly: with Prometheus down, `repo check add` would refuse the query.
    Check.objects.create(
        repo=shop, name="p99", provider="prometheus", query="up", condition="max_vs_baseline",
        threshold=2,
    )  # fmt: skip
    with mock.patch("monitoring.checks.requests.get", wraps=requests.get) as get:
        tick(2)
    asked = [c for c in get.call_args_list if c.args[0].endswith("/api/v1/query")]
    assert len(asked) == 4  # baseline and value, on each tick
    assert not CheckBaseline.objects.exists()
    window.refresh_from_db()
    assert window.state == "active"


# --- the admin ---------------------------------------------------------------------------


def repo_form(repo: MonitoredRepo, **check) -> dict:
    """The repo's change form as the admin posts it, with one new check in the inline."""
    data = {
        "name": repo.name,
        "health_url": repo.health_url,
        "error_rate_url": "",
        "rollback_command": "[]",
        "rollback_url": "",
        "rollback_timeout": "120",
        "checks-TOTAL_FORMS": "1",
        "checks-INITIAL_FORMS": "0",
        "checks-MIN_NUM_FORMS": "0",
        "checks-MAX_NUM_FORMS": "1000",
        "checks-0-failure_limit": "1",
        "checks-0-baseline_minutes": "30",
        "_save": "Save",
    }
    data.update({f"checks-0-{k}": v for k, v in check.items()})
    return data


def test_the_admin_edits_checks_inline_with_the_same_validation(admin_client, shop):
    url = f"/admin/monitoring/monitoredrepo/{shop.pk}/change/"
    bad = repo_form(
        shop, name="queue", provider="http", url="https://shop.example.com/s.json",
        json_path="$[", condition="max", threshold="10",
    )  # fmt: skip
    page = admin_client.post(url, bad)
    assert page.status_code == 200 and "bad JSONPath" in page.content.decode()
    assert not Check.objects.exists()
    good = repo_form(
        shop, name="queue", provider="http", url="https://shop.example.com/s.json",
        json_path="$.queue.depth", condition="max", threshold="10",
    )  # fmt: skip
    assert admin_client.post(url, good).status_code == 302
    assert Check.objects.get().json_path == "$.queue.depth"


def test_a_check_that_cannot_be_read_does_not_stop_the_tick(deployed, json_endpoint, tick):
    served = json_endpoint({"value": 3})
    _, window = deployed()
    add_http_check("shop", "queue", served.url, "--max", "10")
    with mock.patch("monitoring.ticks.read_check", side_effect=RecursionError("deep")):
        tick()
    [measured] = CheckMeasurement.objects.all()
    assert (measured.result, measured.error) == (
        "unmeasured",
        "could not be read: RecursionError('deep')",
    )
    assert window.probes.count() == 1  # the health probe was recorded all the same
