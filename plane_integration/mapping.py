"""What a task shows on the board: the one place that maps truth to a status key.

Pure.
"""

from pipeline.stages import DeployPhase, Stage
from pipeline.windows import WindowFacts

__all__ = ["WindowFacts", "status_key"]


def status_key(stage: str, deploy_phase: str, window: WindowFacts | None = None) -> str:
    match stage:
        case Stage.ANALYSIS:
            return "analysis"
        case Stage.DEVELOPMENT:
            return "in_progress"
        case Stage.CODE_REVIEW:
            return "code_review"
        case Stage.DEPLOY:
            # Succeeded is momentary (the same call moves the task to done).
            running = deploy_phase in (DeployPhase.DEPLOYING, DeployPhase.SUCCEEDED)
            return "deploying" if running else "awaiting_deploy"
        case Stage.DONE:
            if window and window.active:
                return "monitoring"
            if window and window.verdict == "DEGRADED":
                return "blocked"
            return "done"
        case Stage.CANCELLED:
            return "cancelled"
    raise ValueError(f"unknown stage {stage!r}")
