"""The webhook fixtures parse, carry what the service reads, and are signed as hosts sign."""

import hashlib
import hmac
import json

import pytest

from tests import git_fixtures as gf

ALL = [(provider, name) for provider in gf.PROVIDERS for name in gf.names(provider)]
GITHUB_PULL_REQUESTS = [n for n in gf.names("github") if n.startswith("pull_request.")]


def test_every_provider_has_fixtures():
    for provider in gf.PROVIDERS:
        assert gf.names(provider), provider
    assert "pull_request.opened" in gf.names("github")
    assert {"merge_request", "deployment", "pipeline", "push"} <= set(gf.names("gitlab"))
    assert "pull_request.opened" in gf.names("forgejo")


@pytest.mark.parametrize(("provider", "name"), ALL)
def test_every_fixture_parses(provider, name):
    payload = gf.load(provider, name)
    assert isinstance(payload, dict) and payload


def test_load_gives_a_fresh_copy():
    first = gf.load("github", "pull_request.opened")
    first["pull_request"]["head"]["ref"] = "changed"
    assert gf.load("github", "pull_request.opened")["pull_request"]["head"]["ref"] == "changes"


def test_unknown_provider_is_refused():
    with pytest.raises(ValueError):
        gf.load("bitbucket", "push")


@pytest.mark.parametrize("name", GITHUB_PULL_REQUESTS)
def test_github_pull_requests_carry_what_the_service_reads(name):
    payload = gf.load("github", name)
    pull = payload["pull_request"]
    assert isinstance(pull["number"], int)
    assert payload["repository"]["full_name"]
    assert pull["head"]["ref"]
    assert pull["updated_at"]
    # The file's name says the action (and for closed, whether it merged).
    action = name.split(".")[1]
    assert payload["action"] == action
    if action == "closed":
        assert pull["merged"] is name.endswith(".merged")


def test_github_fixture_states_match_their_names():
    assert gf.load("github", "deployment_status.success")["deployment_status"]["state"] == "success"
    in_progress = gf.load("github", "deployment_status.in_progress")
    assert in_progress["deployment_status"]["state"] == "in_progress"
    run = gf.load("github", "workflow_run.completed.success")["workflow_run"]
    assert (run["status"], run["conclusion"]) == ("completed", "success")
    assert gf.load("github", "pull_request.converted_to_draft")["pull_request"]["draft"] is True
    assert gf.load("github", "pull_request.ready_for_review")["pull_request"]["draft"] is False


def test_gitlab_and_forgejo_payloads_carry_what_the_service_reads():
    merge_request = gf.load("gitlab", "merge_request")
    assert merge_request["object_kind"] == "merge_request"
    assert merge_request["object_attributes"]["iid"] == 1
    assert merge_request["project"]["path_with_namespace"] == "gitlabhq/gitlab-test"
    assert gf.load("gitlab", "deployment")["status"] == "success"
    assert gf.load("gitlab", "pipeline")["object_attributes"]["status"] == "success"
    pull = gf.load("forgejo", "pull_request.opened")
    assert pull["action"] == "opened"
    assert pull["pull_request"]["head"]["ref"] == "6543-patch-1"
    assert pull["repository"]["full_name"] == "test_it/test_ci_thing"


def test_body_is_compact_json_of_the_payload():
    payload = gf.load("github", "ping")
    raw = gf.body(payload)
    assert json.loads(raw) == payload
    assert b'": ' not in raw and b"\n" not in raw


def test_github_signature_is_the_hmac_of_the_raw_body():
    raw = gf.body(gf.load("github", "pull_request.opened"))
    headers = gf.github_headers(raw, "It's a Secret to Everybody", "pull_request", "d-1")
    expected = hmac.new(b"It's a Secret to Everybody", raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == "sha256=" + expected
    assert headers["X-GitHub-Event"] == "pull_request"
    assert headers["X-GitHub-Delivery"] == "d-1"
    assert headers["User-Agent"].startswith("GitHub-Hookshot/")
    assert headers["Content-Type"] == "application/json"


def test_github_signature_matches_githubs_documented_example():
    # GitHub's "Validating webhook deliveries" page: this secret and body give this signature.
    headers = gf.github_headers(b"Hello, World!", "It's a Secret to Everybody", "ping", "x")
    assert headers["X-Hub-Signature-256"] == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_gitlab_headers_carry_the_secret_itself():
    headers = gf.gitlab_headers("s3cret", "Merge Request Hook", "uuid-1")
    assert headers["X-Gitlab-Token"] == "s3cret"
    assert headers["X-Gitlab-Event"] == "Merge Request Hook"
    assert headers["X-Gitlab-Event-UUID"] == "uuid-1"
    assert "Idempotency-Key" not in headers
    keyed = gf.gitlab_headers("s3cret", "Deployment Hook", "uuid-2", idempotency_key="key-1")
    assert keyed["Idempotency-Key"] == "key-1"


def test_forgejo_sends_both_families_with_a_bare_hex_signature():
    raw = gf.body(gf.load("forgejo", "pull_request.opened"))
    expected = hmac.new(b"123", raw, hashlib.sha256).hexdigest()
    headers = gf.forgejo_headers(raw, "123", "pull_request", "f6266f16")
    for family in ("Forgejo", "Gitea"):
        assert headers[f"X-{family}-Signature"] == expected
        assert headers[f"X-{family}-Event"] == "pull_request"
        assert headers[f"X-{family}-Delivery"] == "f6266f16"
    gitea = gf.forgejo_headers(raw, "123", "pull_request", "f6266f16", gitea_only=True)
    assert gitea["X-Gitea-Signature"] == expected
    assert not [h for h in gitea if h.startswith("X-Forgejo-")]
