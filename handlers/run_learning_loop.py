"""``run_learning_loop``: run the learning loop's steps now, each judged before the next, under the policy."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from handlers.run_selfplay import RunJobRequest, check, run_job_request
from watcher.autonomy.orchestrator import Autonomy
from watcher.requests.contract import HandlerContext, HandlerSpec


class RunLearningLoopRequest(RunJobRequest):
    """Run the configured learning loop: steps in order, a retry verdict reruns a step with adjusted parameters."""

    type: Literal["run_learning_loop"] = Field(description="Request type.")


def handle(request: RunLearningLoopRequest, ctx: HandlerContext, autonomy: Autonomy | None = None) -> dict[str, Any]:
    return run_job_request(request, ctx, "run_learning_loop", autonomy)


HANDLER = HandlerSpec(request_type="run_learning_loop", model=RunLearningLoopRequest, check=check, handle=handle)
