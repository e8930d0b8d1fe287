"""Real webhook payloads from GitHub, GitLab and Forgejo, and the headers each host sends.

The payloads live in tests/fixtures/git/<provider>/<name>.json; each folder's README says
where they came from and under which licence. Edit a payload in the test that needs it
(repository, branch, title, action), not in the file:

    payload = load("github", "pull_request.opened")
    payload["pull_request"]["head"]["ref"] = "DEMO-42-fix-login"
    raw = body(payload)
    headers = github_headers(raw, secret, "pull_request", delivery)
"""

import hashlib
import hmac
import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "git"
PROVIDERS = ("github", "gitlab", "forgejo")

# What GitHub's own deliveries carry after the slash (a build id): any value will do.
GITHUB_USER_AGENT = "GitHub-Hookshot/044aadd"


def path(provider: str, name: str) -> Path:
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}: one of {', '.join(PROVIDERS)}")
    return FIXTURES / provider / f"{name}.json"


def load(provider: str, name: str) -> dict:
    """The parsed payload, a fresh copy on every call (edit it freely)."""
    return json.loads(path(provider, name).read_text(encoding="utf-8"))


def names(provider: str) -> list[str]:
    """Every fixture of a provider, by the name load() takes."""
    return sorted(p.stem for p in (FIXTURES / provider).glob("*.json"))


def body(payload: dict) -> bytes:
    """The payload as the hosts send it: compact JSON in UTF-8."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def hmac_sha256_hex(raw: bytes, secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).hexdigest()


def github_headers(
    body: bytes, secret: str, event: str, delivery: str, *, hook_id: str = "109948940"
) -> dict:
    """The headers of a GitHub delivery of `body`, signed with `secret`."""
    return {
        "Content-Type": "application/json",
        "User-Agent": GITHUB_USER_AGENT,
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-GitHub-Hook-ID": hook_id,
        "X-Hub-Signature-256": "sha256=" + hmac_sha256_hex(body, secret),
    }


def gitlab_headers(secret: str, event: str, uuid: str, idempotency_key: str | None = None) -> dict:
    """The headers of a GitLab delivery: the token is the secret itself, not a signature.

    `event` is the X-Gitlab-Event value, e.g. "Merge Request Hook", "Deployment Hook".
    """
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.0.0",
        "X-Gitlab-Event": event,
        "X-Gitlab-Token": secret,
        "X-Gitlab-Event-UUID": uuid,
    }
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    return headers


def forgejo_headers(
    body: bytes, secret: str, event: str, delivery: str, *, gitea_only: bool = False
) -> dict:
    """The headers of a Forgejo delivery (both families), or of a Gitea one (gitea_only).

    The signature is the hex HMAC-SHA256 of the body, with no prefix.
    """
    signature = hmac_sha256_hex(body, secret)
    families = ("Gitea",) if gitea_only else ("Forgejo", "Gitea")
    headers = {"Content-Type": "application/json"}
    for family in families:
        headers[f"X-{family}-Event"] = event
        headers[f"X-{family}-Delivery"] = delivery
        headers[f"X-{family}-Signature"] = signature
    return headers
