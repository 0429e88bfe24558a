"""The peers' event models for ``webhooks_bench.py``: the same six event types as a
pydantic v2 discriminated union and as a msgspec tagged union, so that each peer parses
into typed objects as :func:`audian_async.webhooks.parse_event` does."""

from datetime import datetime
from typing import Annotated, Any, Literal

TYPES = [
    "call.initiated",
    "call.ringing",
    "call.answered",
    "call.completed",
    "call.failed",
    "recording.completed",
]


def pydantic_adapter() -> Any:
    from pydantic import BaseModel, Field, TypeAdapter

    class Data(BaseModel):
        call_id: str | None = None
        status: str | None = None

    class FailedData(Data):
        reason: str | None = None
        reason_code: int | None = None

    class RecordingData(Data):
        recording_id: str | None = None
        recording_url: str | None = None
        format: str | None = None
        duration: float | None = None

    class Base(BaseModel):
        id: str | None = None
        timestamp: datetime | None = None

    class Initiated(Base):
        event: Literal["call.initiated"]
        data: Data

    class Ringing(Base):
        event: Literal["call.ringing"]
        data: Data

    class Answered(Base):
        event: Literal["call.answered"]
        data: Data

    class Completed(Base):
        event: Literal["call.completed"]
        data: Data

    class Failed(Base):
        event: Literal["call.failed"]
        data: FailedData

    class RecordingDone(Base):
        event: Literal["recording.completed"]
        data: RecordingData

    union = Initiated | Ringing | Answered | Completed | Failed | RecordingDone
    return TypeAdapter(Annotated[union, Field(discriminator="event")])


def msgspec_decoder() -> Any:
    import msgspec

    class Data(msgspec.Struct):
        call_id: str | None = None
        status: str | None = None

    class FailedData(Data):
        reason: str | None = None
        reason_code: int | None = None

    class RecordingData(Data):
        recording_id: str | None = None
        recording_url: str | None = None
        format: str | None = None
        duration: float | None = None

    def event(tag: str, data: type) -> type:
        return msgspec.defstruct(
            tag.replace(".", "_"),
            [("data", data), ("id", str | None, None), ("timestamp", datetime | None, None)],
            tag=tag,
            tag_field="event",
        )

    classes = [event(t, Data) for t in TYPES[:4]]
    classes += [event("call.failed", FailedData), event("recording.completed", RecordingData)]
    union = classes[0] | classes[1] | classes[2] | classes[3] | classes[4] | classes[5]
    return msgspec.json.Decoder(union)
