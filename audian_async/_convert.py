"""The wire format: one cattrs converter that turns models into API JSON and back.

This module is the only place that knows wire names and formats:

* ``from_`` in Python is ``"from"`` on the wire;
* datetimes are timezone-aware and sent as ISO 8601 UTC with a ``Z``;
* unset optionals are omitted (the API never sees ``null``);
* a call control action carries its type in ``"action"``; a DTMF route is flat
  (``{"digit": "1", "action": "transfer", "destination": ...}``);
* response fields this version does not know are ignored, and unknown statuses and
  reasons stay plain strings.

It is pure: no I/O, usable by the client, the sandbox and the tests alike.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from ._errors import AudianError, ValidationError
from ._json import dumps, loads
from ._models import (
    Action,
    BatchItem,
    BatchResult,
    Call,
    CallControl,
    CallRequest,
    DtmfRoute,
    GatherDtmf,
    Hangup,
    PlayAudio,
    RecordAudio,
    Recording,
    Transfer,
)

__all__ = [
    "ACTION_NAMES",
    "APIResponseValidationError",
    "converter",
    "decode_batch",
    "decode_call",
    "encode_batch_body",
    "encode_call_body",
    "format_datetime",
    "make_converter",
    "parse_call_request",
    "parse_datetime",
    "request_to_wire",
]

T = TypeVar("T")

ACTION_NAMES: dict[type[Any], str] = {
    PlayAudio: "play_audio",
    RecordAudio: "record_audio",
    Transfer: "transfer",
    Hangup: "hangup",
    GatherDtmf: "gather_dtmf",
}
_ACTION_TYPES = {name: cls for cls, name in ACTION_NAMES.items()}
_WIRE_RENAMES = {"from_": "from"}


class APIResponseValidationError(AudianError):
    """The API answered 2xx with a body this SDK cannot read (not JSON, or wrong shape)."""


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix; whole seconds unless sub-second precision is set."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    timespec = "microseconds" if utc.microsecond else "seconds"
    return utc.isoformat(timespec=timespec) + "Z"


def parse_datetime(value: object) -> datetime:
    """Parse an ISO 8601 string; a timestamp without an offset is taken to be UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"not an ISO 8601 datetime: {value!r}") from None
    else:
        raise TypeError(f"expected an ISO 8601 string, got {type(value).__name__}")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# Strict primitives: the converter is also the sandbox's request parser, where "45" for an
# integer or 1 for a string is a client bug to report, not to coerce.
def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if isinstance(value, float):
        if not value.is_integer():
            raise TypeError(f"expected an integer, got {value!r}")
        return int(value)
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _structure_object(value: object, _: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _lenient_enum_union(tp: Any) -> tuple[type[enum.Enum], bool] | None:
    """For ``SomeEnum | str`` (or ``| None``): the enum, and whether None is allowed."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    enums = [a for a in args if isinstance(a, type) and issubclass(a, enum.Enum)]
    rest = {a for a in args if a not in enums}
    if len(enums) == 1 and rest in ({str}, {str, type(None)}):
        return enums[0], type(None) in rest
    return None


def _make_lenient_enum_hook(tp: Any) -> Callable[[object, Any], object]:
    found = _lenient_enum_union(tp)
    assert found is not None
    enum_cls, nullable = found

    def structure(value: object, _: Any) -> object:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        try:
            return enum_cls(value)
        except ValueError:
            return value  # a value newer than this SDK: keep it rather than fail

    return structure


def _drop_unset(fn: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def unstructure(obj: Any) -> dict[str, Any]:
        # None and empty action lists are "unset": the API never sees null or [].
        return {k: v for k, v in fn(obj).items() if v is not None and v != []}

    return unstructure


def make_converter() -> cattrs.Converter:
    """Build the converter that owns the Audian wire format."""
    conv = cattrs.Converter(forbid_extra_keys=False)

    conv.register_unstructure_hook(datetime, format_datetime)
    conv.register_structure_hook(datetime, lambda v, _: parse_datetime(v))
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook_func(lambda t: t == dict[str, Any], _structure_object)
    conv.register_structure_hook_factory(
        lambda t: _lenient_enum_union(t) is not None, _make_lenient_enum_hook
    )

    overrides = {name: override(rename=wire) for name, wire in _WIRE_RENAMES.items()}

    # Routes first, so the GatherDtmf hooks generated below capture them.
    def unstructure_route(route: DtmfRoute) -> dict[str, Any]:
        return {"digit": route.digit, **conv.unstructure(route.action, unstructure_as=Action)}

    def structure_route(value: object, _: Any) -> DtmfRoute:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a route object, got {type(value).__name__}")
        rest = {k: v for k, v in value.items() if k != "digit"}
        return DtmfRoute(
            digit=_structure_str(value.get("digit"), str),
            action=structure_action(rest, Action),
        )

    conv.register_unstructure_hook(DtmfRoute, unstructure_route)
    conv.register_structure_hook(DtmfRoute, structure_route)

    # Actions: the class travels as the "action" discriminator.
    for cls, name in ACTION_NAMES.items():
        plain = _drop_unset(make_dict_unstructure_fn(cls, conv))

        def unstructure_action(
            obj: Any, plain: Callable[[Any], dict[str, Any]] = plain, name: str = name
        ) -> dict[str, Any]:
            return {"action": name, **plain(obj)}

        conv.register_unstructure_hook(cls, unstructure_action)
        conv.register_structure_hook(
            cls, make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=False)
        )

    def unstructure_any_action(obj: Any) -> dict[str, Any]:
        result: dict[str, Any] = conv.unstructure(obj, unstructure_as=type(obj))
        return result

    def structure_action(value: object, _: Any) -> Action:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected an action object, got {type(value).__name__}")
        name = value.get("action")
        cls = _ACTION_TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            known = ", ".join(sorted(_ACTION_TYPES))
            raise ValueError(f"unknown action {name!r} (expected one of: {known})")
        fields = {k: v for k, v in value.items() if k != "action"}
        action: Action = conv.structure(fields, cls)
        return action

    conv.register_unstructure_hook(Action, unstructure_any_action)
    conv.register_structure_hook(Action, structure_action)

    # Requests: omit unset optionals.
    for cls in (Recording, CallControl, CallRequest):  # leaves first: hooks are captured
        fields = {f.name for f in attrs.fields(cls)}
        cls_overrides: dict[str, Any] = {k: v for k, v in overrides.items() if k in fields}
        conv.register_unstructure_hook(
            cls, _drop_unset(make_dict_unstructure_fn(cls, conv, **cls_overrides))
        )
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **cls_overrides))

    # Responses: tolerate unknown fields; absent fields fall back to the model's None.
    for cls in (Call, BatchItem, BatchResult):
        fields = {f.name for f in attrs.fields(cls)}
        cls_overrides = {k: v for k, v in overrides.items() if k in fields}
        conv.register_structure_hook(cls, make_dict_structure_fn(cls, conv, **cls_overrides))
        conv.register_unstructure_hook(
            cls, _drop_unset(make_dict_unstructure_fn(cls, conv, **cls_overrides))
        )
    return conv


converter = make_converter()
"""The converter shared by the whole package."""

_unstructure_request = converter.get_unstructure_hook(CallRequest)


def request_to_wire(request: CallRequest) -> dict[str, Any]:
    """The JSON object the API expects for ``request`` (no nulls, wire names)."""
    wire: dict[str, Any] = _unstructure_request(request)
    return wire


def encode_call_body(request: CallRequest) -> bytes:
    """The request body of ``POST /calls``."""
    return dumps(_unstructure_request(request))


def encode_batch_body(requests: Sequence[CallRequest]) -> bytes:
    """The request body of ``POST /calls/batch``."""
    return dumps({"calls": [_unstructure_request(r) for r in requests]})


def _decode(body: bytes, cls: type[T]) -> T:
    try:
        data = loads(body)
    except ValueError:
        raise APIResponseValidationError(
            f"expected a JSON {cls.__name__}, got {body[:80]!r}"
        ) from None
    if not isinstance(data, dict):
        raise APIResponseValidationError(f"expected a JSON object for {cls.__name__}")
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, format_exception=_describe))
        else:
            detail = str(exc)
        raise APIResponseValidationError(f"unreadable {cls.__name__}: {detail}") from exc


def decode_call(body: bytes) -> Call:
    """Parse a call object from a response body."""
    return _decode(body, Call)


def decode_batch(body: bytes) -> BatchResult:
    """Parse a batch reply from a response body."""
    return _decode(body, BatchResult)


def _path_from_cattrs(location: str) -> str:
    # cattrs reports "... @ $.call_control.on_answered[0]"; we speak "call_control.on_answered[0]".
    path = location.removeprefix("$").removeprefix(".")
    for py_name, wire in _WIRE_RENAMES.items():
        path = path.replace(py_name, wire)
    return path


def _describe(exc: BaseException, type_: Any) -> str:
    # Our hooks raise with a precise message; keep it rather than cattrs' generic one.
    if isinstance(exc, TypeError | ValueError) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def parse_call_request(data: object, *, require_from: bool = True) -> CallRequest:
    """Read a wire JSON object into a :class:`CallRequest` (the sandbox's request parser).

    Shapes and types are checked here, raising :class:`ValidationError` with the wire path of
    the first problem; value rules (E.164, ranges) are :func:`validate_call_request`'s job.
    Without ``require_from`` (a dialer's stored request, its caller ID left to the pool) a
    missing ``from`` reads as None.
    """
    if not isinstance(data, Mapping):
        raise ValidationError("", "the request body must be a JSON object")
    if not require_from and "from" not in data:
        data = {**data, "from": None}
    for required in ("from", "to"):
        if required not in data:
            raise ValidationError(required, "is required")
    try:
        return converter.structure(data, CallRequest)
    except cattrs.BaseValidationError as exc:
        messages = cattrs.transform_error(exc, format_exception=_describe)
        first = messages[0] if messages else str(exc)
        message, _, location = first.rpartition(" @ ")
        raise ValidationError(_path_from_cattrs(location), message or first) from None
    except (TypeError, ValueError) as exc:
        raise ValidationError("", str(exc)) from None
