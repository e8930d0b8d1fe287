"""How each Git host proves a delivery is its own (GIT.md). Pure: constant-time checks."""

import hashlib
import hmac


def hmac_hex(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(expected: str, sent: str | None) -> bool:
    # As bytes: compare_digest refuses non-ASCII text, and anyone can send such a header.
    given = (sent or "").strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode(), given)


def github_ok(body: bytes, secret: str, sent: str | None) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`."""
    if not secret or not sent or not sent.startswith("sha256="):
        return False
    return _same(hmac_hex(body, secret), sent[len("sha256=") :])


def forgejo_ok(body: bytes, secret: str, sent: str | None) -> bool:
    """`X-Forgejo-Signature` / `X-Gitea-Signature`: hex HMAC-SHA256, no prefix."""
    return bool(secret and sent) and _same(hmac_hex(body, secret), sent)


def gitlab_ok(secret: str, sent: str | None) -> bool:
    """`X-Gitlab-Token` is the secret itself, compared in constant time."""
    if not secret or sent is None:
        return False
    return hmac.compare_digest(secret.encode(), sent.encode("utf-8", "replace"))
