"""A request: the fields every request type has, and the validated request handed to its handler."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from watcher.core.ids import ID_PATTERN

if TYPE_CHECKING:
    from watcher.requests.contract import HandlerSpec


class RequestBase(BaseModel):
    """Fields every request has. Subclasses set ``type`` to a ``Literal`` of their type name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str = Field(description="Request type; picks the handler and the schema.")
    id: str | None = Field(
        None,
        pattern=ID_PATTERN,
        description="Request id, used as the decision's file name. Default: sha256 of the file, 16 hex digits.",
    )


@dataclass(frozen=True)
class Request:
    """A validated request, ready for its handler."""

    id: str
    type: str
    model: BaseModel
    sha256: str
    spec: HandlerSpec
