"""What needs a person whatever the other limits say: the pipeline's ``v1_approval_required`` flags."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApprovalRequired(BaseModel):
    """Kinds of action that always wait for a person (``watcher approve``), however sure the proposal is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    retrain_execution: bool = Field(
        False, description="Running selfplay or learning-loop steps needs a person. Default false."
    )
    regime_reset: bool = Field(
        False,
        description="A full reset (learning loop scope `full`, `pipeline_rerun`, advisor FULL_RESET) needs a "
        "person. Default false.",
    )
    parameter_application: bool = Field(False, description="Changing a parameter needs a person. Default false.")
