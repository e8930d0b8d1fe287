"""The monitor's flags and numbers, read when they are used (never at import)."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from monitoring.classifier import Rules


@dataclass(frozen=True)
class MonitorConfig:
    enabled: bool
    repos: frozenset[str]
    self_hosting_repo: str
    window: timedelta
    tick: timedelta
    rules: Rules
    probe_timeout: float

    def monitors(self, repo: str) -> bool:
        """Flags `post_deploy_enabled` and `post_deploy_repos` (empty: self-hosting only)."""
        if not (self.enabled and repo):
            return False
        return repo in (self.repos or {self.self_hosting_repo})

    def alert_only(self, repo: str) -> bool:
        """The self-hosting repo is never restarted by its own monitor."""
        return repo == self.self_hosting_repo


def current() -> MonitorConfig:
    return MonitorConfig(
        enabled=settings.ORCH_POST_DEPLOY_ENABLED,
        repos=frozenset(settings.ORCH_POST_DEPLOY_REPOS),
        self_hosting_repo=settings.ORCH_SELF_HOSTING_REPO,
        window=timedelta(minutes=settings.ORCH_POST_DEPLOY_WINDOW_MINUTES),
        tick=timedelta(seconds=settings.ORCH_POST_DEPLOY_TICK_SECONDS),
        rules=Rules(
            fail_threshold=settings.ORCH_POST_DEPLOY_FAIL_THRESHOLD,
            error_ratio=settings.ORCH_POST_DEPLOY_ERROR_RATIO,
            min_samples=settings.ORCH_POST_DEPLOY_MIN_SAMPLES,
        ),
        probe_timeout=settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT,
    )
