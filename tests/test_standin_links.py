"""The stand-in's project and work item links, over real HTTP as the Git hosts issue uses them."""

import re

import pytest
import requests

from plane_standin.server import PlaneStandIn, seed_demo
from tests.test_standin import make_world, session

PR = "https://github.com/acme/shop/pull/42"


@pytest.fixture
def world():
    world = make_world()
    yield world
    world.plane.stop()


# ------------------------------------------------------------------------------------ project


def test_the_project_answers_its_identifier_and_name(world):
    answer = world.http.get(world.project_url())

    assert answer.status_code == 200
    project = answer.json()
    assert project["id"] == world.project_id
    assert project["identifier"] == "PROJ"
    assert project["name"] == "PROJ"  # no name given: the identifier
    assert project["workspace"] == world.plane.project(world.project_id)["workspace"]


def test_an_unknown_project_is_404_with_plane_s_error(world):
    other_workspace = world.plane.url + f"/api/v1/workspaces/nope/projects/{world.project_id}/"

    missing = world.http.get(world.project_url().replace(world.project_id, world.items[0]))

    assert missing.status_code == 404 and missing.json() == {"error": "Project not found"}
    assert world.http.get(other_workspace).status_code == 404


def test_the_project_is_an_api_call_like_the_others(world):
    assert session(key=None).get(world.project_url()).status_code == 401
    world.plane.fail_next(1, status=503)

    assert world.http.get(world.project_url()).status_code == 503
    assert [r.status for r in world.plane.calls("GET", contains=world.project_id)] == [401, 503]


# -------------------------------------------------------------------------------------- links


@pytest.mark.parametrize("form", ["work-items", "issues"])
def test_a_link_is_created_with_201_on_both_path_forms(world, form):
    item = world.items[0]

    answer = world.http.post(
        world.project_url(form, item, "links"), json={"url": PR, "title": "PR #42"}
    )

    assert answer.status_code == 201
    link = answer.json()
    assert (link["url"], link["title"], link["issue"], link["metadata"]) == (
        PR,
        "PR #42",
        item,
        {},
    )
    assert link["created_by"] == world.plane.bot_user_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", link["created_at"])
    assert world.plane.links(item) == [link]


def test_the_same_url_again_on_the_same_item_is_400_and_stores_nothing(world):
    first, second = world.items[:2]
    url = world.project_url("work-items", first, "links")
    world.http.post(url, json={"url": PR, "title": "PR #42"})

    again = world.http.post(url, json={"url": PR, "title": "another title"})
    elsewhere = world.http.post(
        world.project_url("work-items", second, "links"), json={"url": PR, "title": "PR #42"}
    )

    assert again.status_code == 400
    assert again.json() == {"error": "URL already exists for this Issue"}
    assert [link["title"] for link in world.plane.links(first)] == ["PR #42"]
    assert elsewhere.status_code == 201  # one URL per work item, not per project


@pytest.mark.parametrize(
    "body",
    [
        {"title": "no url"},
        {"url": None},
        {"url": ""},
        {"url": "ftp://example.com/pr/1"},
        {"url": "not a url"},
        {"url": "https://"},
        {"url": 42},
    ],
)
def test_a_missing_or_non_http_url_is_400_and_stores_nothing(world, body):
    item = world.items[0]

    answer = world.http.post(world.project_url("work-items", item, "links"), json=body)

    assert answer.status_code == 400
    assert answer.json() == {"url": ["Enter a valid URL."]}
    assert world.plane.links(item) == []


def test_links_are_listed_newest_first_and_paginated_like_comments(world):
    item = world.items[0]
    url = world.project_url("work-items", item, "links")
    for n in range(1, 4):
        assert world.http.post(url, json={"url": f"{PR}{n}", "title": f"#{n}"}).ok

    first = world.http.get(url, params={"per_page": 2}).json()
    second = world.http.get(url, params={"cursor": first["next_cursor"]}).json()

    assert [link["title"] for link in first["results"]] == ["#3", "#2"]
    assert first["next_page_results"] is True and first["total_count"] == 3
    assert [link["title"] for link in second["results"]] == ["#1"]
    assert second["next_page_results"] is False


def test_links_of_an_unknown_work_item_are_404(world):
    url = world.project_url("work-items", world.project_id, "links")

    assert world.http.get(url).status_code == 404
    answer = world.http.post(url, json={"url": PR})
    assert answer.status_code == 404 and answer.json() == {"error": "Work item not found"}


def test_links_count_against_the_rate_limit_and_the_log(world):
    world.plane.set_rate_limit(2, 60.0)
    url = world.project_url("work-items", world.items[0], "links")

    answers = [world.http.post(url, json={"url": f"{PR}{n}"}) for n in range(3)]

    assert [a.status_code for a in answers] == [201, 201, 429]
    assert answers[0].headers["X-RateLimit-Remaining"] == "1"
    assert [(r.method, r.status) for r in world.plane.calls(contains="/links/")] == [
        ("POST", 201),
        ("POST", 201),
        ("POST", 429),
    ]
    assert len(world.plane.links(world.items[0])) == 2


def test_an_injected_failure_answers_a_link_post_and_stores_nothing(world):
    world.plane.fail_next(1, status=502)
    url = world.project_url("work-items", world.items[0], "links")

    failed = world.http.post(url, json={"url": PR})
    stored = world.plane.links(world.items[0])
    retried = world.http.post(url, json={"url": PR})

    assert failed.status_code == 502 and stored == []
    assert retried.status_code == 201


def test_a_link_post_waits_out_hang_next_after_it_is_stored(world):
    world.plane.hang_next("POST", "/links/", 1.0)
    url = world.project_url("work-items", world.items[0], "links")

    with pytest.raises(requests.Timeout):
        world.http.post(url, json={"url": PR}, timeout=0.3)

    assert [link["url"] for link in world.plane.links(world.items[0])] == [PR]
    assert world.http.post(url, json={"url": PR}).status_code == 400  # it is there


def test_a_deleted_work_item_takes_its_links_along(world):
    item = world.items[0]
    world.plane.add_link(item, PR, "PR #42")

    world.plane.delete_work_item(item)

    with pytest.raises(KeyError):
        world.plane.links(item)


# ---------------------------------------------------------------------------------- the board


def test_the_board_shows_each_cards_readable_id_and_its_links():
    with PlaneStandIn() as plane:
        demo = seed_demo(plane)
        third = demo["work_items"][2]
        plane.add_link(third, PR, "PR #42 <fix>")
        plane.add_link(third, "https://gitlab.com/acme/shop/-/merge_requests/7")

        page = requests.get(f"{plane.url}/board/?refresh=0", timeout=5).text
        data = requests.get(f"{plane.url}/board.json", timeout=5).json()

    card = re.search(rf'<div class="card" id="item-{third}".*?</div>', page, re.S).group(0)
    assert "<b>DEMO-3</b>" in card
    assert f'<a href="{PR}" rel="noreferrer">PR #42 &lt;fix&gt;</a>' in card
    # A link without a title shows its URL.
    assert ">https://gitlab.com/acme/shop/-/merge_requests/7</a>" in card
    assert page.count('class="links"') == 1  # cards without links show no list
    links = next(i["links"] for i in data["work_items"] if i["id"] == third)
    assert [link["url"] for link in links] == [
        "https://gitlab.com/acme/shop/-/merge_requests/7",
        PR,
    ]
