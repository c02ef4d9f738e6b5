"""Request handlers, one module per request type; ``HANDLERS`` is the list the daemon and the commands serve."""

from handlers import (
    approve_escalation,
    chapter_13,
    learning_loop,
    pending_approval,
    pipeline_rerun,
    run_learning_loop,
    run_selfplay,
    selfplay_retrain,
    step_evaluation,
)
from watcher.requests.contract import HandlerSpec, Registry

HANDLERS: tuple[HandlerSpec, ...] = (
    step_evaluation.HANDLER,
    chapter_13.HANDLER,
    run_selfplay.HANDLER,
    run_learning_loop.HANDLER,
    selfplay_retrain.HANDLER,
    learning_loop.HANDLER,
    pipeline_rerun.HANDLER,
    pending_approval.HANDLER,
    approve_escalation.HANDLER,
)


def registry() -> Registry:
    return Registry(HANDLERS)
