"""The monitor's flags and numbers, read when they are used (never at import)."""

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings

from monitoring.classifier import Rules
from pipeline import switchboard


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
        return bool(self.enabled and repo and repo in self.repos)

    def alert_only(self, repo: str) -> bool:
        """The self-hosting repo is never restarted by its own monitor."""
        return repo == self.self_hosting_repo


def current() -> MonitorConfig:
    """The monitor's flags from the runtime switchboard, as of now."""
    flags = switchboard.get()
    return MonitorConfig(
        enabled=flags.post_deploy_enabled,
        repos=switchboard.repos(flags.post_deploy_repos, settings.ORCH_SELF_HOSTING_REPO),
        self_hosting_repo=settings.ORCH_SELF_HOSTING_REPO,
        window=timedelta(minutes=flags.post_deploy_window_minutes),
        tick=timedelta(seconds=flags.post_deploy_tick_seconds),
        rules=Rules(
            fail_threshold=flags.post_deploy_fail_threshold,
            error_ratio=flags.post_deploy_error_ratio,
            min_samples=flags.post_deploy_min_samples,
        ),
        probe_timeout=settings.ORCH_POST_DEPLOY_PROBE_TIMEOUT,
    )
