"""The Plane client against the stand-in, over real HTTP on loopback."""

import time

import pytest

from plane_integration.client import PlaneClient
from plane_standin.server import DEFAULT_STATES, PlaneStandIn
from tests.conftest import PLANE_KEY

pytestmark = pytest.mark.django_db


def client_for(plane: PlaneStandIn, **overrides) -> PlaneClient:
    options = {
        "base_url": plane.url,
        "api_key": PLANE_KEY,
        "path_form": "work-items",
        "retries": 2,
        "backoff": 0.01,
    }
    return PlaneClient(**{**options, **overrides})


@pytest.fixture
def project(plane):
    return plane.add_project("acme", states=DEFAULT_STATES)


def test_it_reads_all_states_across_pages(plane, project):
    client = client_for(plane)
    client.page_size = 2
    result = client.get_states("acme", project)
    assert result.ok
    assert [s["name"] for s in result.data] == [name for name, _ in DEFAULT_STATES]
    assert len(plane.calls("GET", "/states/")) == 3  # 2 + 2 + 1


def test_it_lists_work_items_with_only_the_fields_asked_for(plane, project):
    ids = [plane.add_work_item("acme", project, f"item {n}") for n in range(5)]
    client = client_for(plane)
    client.page_size = 2
    result = client.list_work_items("acme", project, fields=("id", "state"))
    assert result.ok
    assert [item["id"] for item in result.data] == ids
    assert set(result.data[0]) == {"id", "state"}


def test_it_sets_a_state_and_returns_the_work_item(plane, project):
    item = plane.add_work_item("acme", project, "Fix login")
    done = plane.state_id(project, "Done")
    result = client_for(plane).set_state("acme", project, item, done)
    assert result.ok and result.status == 200
    assert result.data["state"] == done
    assert plane.work_item(item)["state"] == done
    patch = plane.calls("PATCH")[0]
    assert patch.path.endswith(f"/work-items/{item}/")
    assert patch.headers["X-API-Key"] == PLANE_KEY


def test_plane_refusing_a_state_is_a_result_with_the_reason(plane, project):
    other = plane.add_project("acme", identifier="OTHER")
    item = plane.add_work_item("acme", project, "Fix login")
    before = plane.work_item(item)["state"]
    result = client_for(plane).set_state("acme", project, item, plane.state_id(other, "Done"))
    assert (result.ok, result.status) == (False, 400)
    assert result.error.startswith("Plane answered 400: ")
    assert plane.work_item(item)["state"] == before


def test_an_unknown_work_item_is_a_404_result(plane, project):
    result = client_for(plane).get_work_item(
        "acme", project, "00000000-0000-4000-8000-0000000000ff"
    )
    assert (result.ok, result.status) == (False, 404)


def test_a_wrong_api_key_is_a_clear_error(plane, project):
    result = client_for(plane, api_key="plane_api_wrong").get_states("acme", project)
    assert (result.ok, result.status) == (False, 403)
    assert "Plane refused the API key (403)" in result.error


def test_an_unreachable_plane_is_a_result_not_an_exception(plane, project):
    client = client_for(plane)
    plane.stop()
    result = client.get_states("acme", project)
    assert (result.ok, result.status) == (False, None)
    assert result.error.startswith("cannot reach Plane")


def test_a_malformed_url_is_a_result_not_an_exception(plane):
    result = client_for(plane, base_url="http://[not-a-host").get_states("acme", "p")
    assert not result.ok and result.error


def test_5xx_answers_are_retried_with_backoff(plane, project):
    item = plane.add_work_item("acme", project, "Fix login")
    plane.fail_next(2, status=503)
    result = client_for(plane).set_state("acme", project, item, plane.state_id(project, "Done"))
    assert result.ok
    assert [c.status for c in plane.calls("PATCH")] == [503, 503, 200]


def test_a_persistent_5xx_gives_up_after_the_retries(plane, project):
    plane.fail_for(5, status=500)
    result = client_for(plane, retries=2).get_states("acme", project)
    assert (result.ok, result.status) == (False, 500)
    assert len(plane.calls("GET")) == 3


def test_a_comment_is_not_resent_after_plane_answered(plane, project):
    item = plane.add_work_item("acme", project, "Fix login")
    plane.fail_next(1, status=502)
    result = client_for(plane).add_comment("acme", project, item, "<p>DEGRADED</p>")
    assert (result.ok, result.status) == (False, 502)
    assert len(plane.calls("POST")) == 1
    assert plane.comments(item) == []


def test_a_comment_is_posted(plane, project):
    item = plane.add_work_item("acme", project, "Fix login")
    result = client_for(plane).add_comment("acme", project, item, "<p>all good</p>")
    assert (result.ok, result.status) == (True, 201)
    assert [c["comment_html"] for c in plane.comments(item)] == ["<p>all good</p>"]


def test_a_slow_plane_times_out_and_reads_are_retried(plane, project):
    plane.delay_for(5, 1.0)
    started = time.monotonic()
    result = client_for(plane, read_timeout=0.2, retries=1).get_states("acme", project)
    assert (result.ok, result.status) == (False, None)
    assert "did not answer in time" in result.error
    assert time.monotonic() - started < 3
    assert len(plane.calls("GET")) == 2


def test_429_is_honoured_by_every_client_of_the_key(plane, project):
    plane.set_rate_limit(2, 3.0)
    first, second = client_for(plane), client_for(plane)  # as two processes would have
    assert first.get_states("acme", project).ok
    assert first.get_states("acme", project).ok
    refused = first.get_states("acme", project)
    assert (refused.status, refused.rate_limited) == (429, True)
    assert refused.retry_after >= 1
    sent = len(plane.requests)
    waiting = second.get_states("acme", project)
    assert waiting.rate_limited and waiting.status is None
    assert "rate budget spent" in waiting.error
    assert len(plane.requests) == sent  # nothing was sent during Retry-After


def test_the_budget_keeps_every_client_of_a_key_under_the_limit(plane, project):
    plane.set_rate_limit(5, 1.0)
    one, two = (
        client_for(plane, rate_limit=5, rate_window=1.0),
        client_for(plane, rate_limit=5, rate_window=1.0),
    )
    results = [one.get_states("acme", project) for _ in range(3)]
    results += [two.get_states("acme", project) for _ in range(3)]
    assert [r.ok for r in results] == [True] * 5 + [False]
    assert results[-1].rate_limited and results[-1].status is None
    assert all(c.status == 200 for c in plane.requests)  # Plane never had to refuse
    time.sleep(results[-1].retry_after)
    assert two.get_states("acme", project).ok


def test_old_servers_are_detected_once_and_spoken_to_under_issues(settings):
    with PlaneStandIn(api_key=PLANE_KEY, path_forms=("issues",)) as old:
        project = old.add_project("acme")
        item = old.add_work_item("acme", project, "Fix login")
        client = client_for(old, path_form="auto")
        assert client.get_work_item("acme", project, item).ok
        assert client.get_work_item("acme", project, item).ok
        paths = [c.path for c in old.requests]
        assert sum("/work-items/" in p for p in paths) == 1  # the one probe
        assert all("/issues/" in p for p in paths[-2:])


@pytest.mark.parametrize(
    "forms,read_under",
    [
        (("work-items", "issues"), ["work-items", "work-items"]),
        (("issues",), ["work-items", "issues", "issues"]),  # an old server: 404, then issues
    ],
)
def test_a_list_page_finds_the_path_form_itself_without_a_probe(forms, read_under):
    with PlaneStandIn(api_key=PLANE_KEY, path_forms=forms) as server:
        project = server.add_project("acme")
        item = server.add_work_item("acme", project, "Fix login")
        client = client_for(server, path_form="auto")
        page = client.work_items_page("acme", project, fields=("id",), order_by="-updated_at")
        assert page.ok and [i["id"] for i in page.data["results"]] == [item]
        assert client.get_work_item("acme", project, item).ok  # the form is known now
        assert [c.path.split("/")[7] for c in server.requests] == read_under
        assert all(c.query.get("per_page") != "1" for c in server.requests)  # no probe


def test_a_list_page_of_a_project_gone_under_every_form_is_plane_s_404(plane):
    client = client_for(plane, path_form="auto")
    gone = "00000000-0000-4000-8000-000000000000"
    page = client.work_items_page("acme", gone, fields=("id",), order_by="-updated_at")
    assert (page.ok, page.status) == (False, 404)
    assert len(plane.requests) == 2  # one read a form, and nothing remembered
    assert client._known_path_form() is None


def test_the_path_form_can_be_fixed_by_setting(plane, project):
    item = plane.add_work_item("acme", project, "Fix login")
    assert client_for(plane, path_form="issues").get_work_item("acme", project, item).ok
    assert "/issues/" in plane.calls("GET")[-1].path
    with pytest.raises(ValueError):
        client_for(plane, path_form="tickets")


def test_the_configured_client_is_reused_until_the_settings_change(plane, settings):
    first = PlaneClient.from_settings()
    assert PlaneClient.from_settings() is first
    settings.PLANE_READ_TIMEOUT = 7.0
    changed = PlaneClient.from_settings()
    assert changed is not first and changed.timeout[1] == 7.0
    settings.PLANE_API_URL = ""
    assert PlaneClient.from_settings() is None


def test_a_comment_is_resent_only_when_the_connection_was_never_made():
    import requests

    from plane_integration.client import _never_connected

    try:
        requests.get("http://127.0.0.1:9/", timeout=1)
    except requests.ConnectionError as refused:
        assert _never_connected(refused)
    broken = requests.ConnectionError("Connection aborted.", RemoteDisconnectedStandIn())
    assert not _never_connected(broken)


class RemoteDisconnectedStandIn(Exception):
    """What a connection that broke after the request was sent looks like to requests."""
