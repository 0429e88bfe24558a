"""The wire format: one cattrs converter that turns models into API JSON and back.

This module is the only place that knows wire names and formats:

* ``from_`` in Python is ``"from"`` on the wire;
* datetimes are timezone-aware and sent as ISO 8601 UTC with a ``Z``; a request's must
  carry an offset, a reply's without one is read as UTC;
* a value of the wrong JSON type is refused with a message in JSON's terms
  (``recording: expected an object ..., got a boolean``), never coerced;
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
from cattrs.cols import homogenous_tuple_structure_factory
from cattrs.errors import AttributeValidationNote, ClassValidationError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

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


class _WireError(TypeError, ValueError):
    """A hook's own account, in JSON's terms, of why a value cannot be read: kept verbatim.

    Both a TypeError and a ValueError, so callers that caught either from a hook still do.
    """


def _kind(value: object) -> str:
    """What JSON calls ``value``: the sender wrote JSON, so "got list" would not ring a bell."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def format_datetime(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix; whole seconds unless sub-second precision is set."""
    utc = value.astimezone(UTC).replace(tzinfo=None)
    timespec = "microseconds" if utc.microsecond else "seconds"
    return utc.isoformat(timespec=timespec) + "Z"


def parse_datetime(value: object, *, require_offset: bool = False) -> datetime:
    """Parse an ISO 8601 string; a timestamp without an offset is taken to be UTC.

    With ``require_offset`` (reading a request) such a timestamp is refused instead: its
    sender left the instant ambiguous, just as ``validate_call_request`` refuses a naive
    datetime. Replies are read leniently, a server's clock being UTC when it says nothing.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _WireError(f"not an ISO 8601 datetime: {value!r}") from None
    else:
        raise _WireError(f"expected an ISO 8601 string, got {_kind(value)}")
    if parsed.utcoffset() is not None:
        return parsed
    if require_offset:
        shown = value if isinstance(value, str) else parsed.isoformat()
        raise _WireError(
            f"must include a UTC offset or Z, as in '2030-01-01T10:00:00Z'; got {shown!r}"
        )
    return parsed.replace(tzinfo=UTC)


def _structure_request_datetime(value: object, _: Any) -> datetime | None:
    # A field override replaces the field's whole hook, its handling of None included.
    return None if value is None else parse_datetime(value, require_offset=True)


# Strict primitives: the converter is also the sandbox's request parser, where "45" for an
# integer or 1 for a string is a client bug to report, not to coerce.
def _structure_str(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _WireError(f"expected a string, got {_kind(value)}")
    return value


def _structure_int(value: object, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WireError(f"expected an integer, got {_kind(value)}")
    if isinstance(value, float):
        if not value.is_integer():
            raise _WireError(f"expected an integer, got {value!r}")
        return int(value)
    return value


def _structure_float(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _WireError(f"expected a number, got {_kind(value)}")
    return float(value)


def _structure_bool(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _WireError(f"expected a boolean, got {_kind(value)}")
    return value


def _structure_object(value: object, _: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _WireError(f"expected an object, got {_kind(value)}")
    return value


def _is_array(tp: Any) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_literal(tp: Any) -> bool:
    return typing.get_origin(tp) is typing.Literal


def _make_literal_hook(tp: Any) -> Callable[[object, Any], object]:
    allowed = typing.get_args(tp)
    kinds = {type(a) for a in allowed}
    # Worded as validate_call_request words it, so the SDK and the sandbox say the same.
    options = ", ".join(sorted(str(a) for a in allowed))

    def structure(value: object, _: Any) -> object:
        if type(value) in kinds and value in allowed:  # the type too: True == 1
            return value
        got = repr(value) if isinstance(value, str) else _kind(value)
        raise _WireError(f"must be one of {options}; got {got}")

    return structure


def _object_only(
    structure: Callable[[Any, Any], T], shape: str = "an object"
) -> Callable[[object, Any], T]:
    """``structure`` for an attrs class, refusing anything but a JSON object first.

    The generated functions test keys with ``in``, which a string or an array also answers
    (so ``"call_control": []`` read as no actions) and a boolean fails in Python's words.
    """

    def structure_object(value: object, cls: Any) -> T:
        if not isinstance(value, Mapping):
            raise _WireError(f"expected {shape}, got {_kind(value)}")
        return structure(value, cls)

    return structure_object


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
    # A lookup, not enum_cls(value): that raises and catches a ValueError for every value
    # it does not know, and goes through Enum's __call__ and __new__ for those it does.
    members = {member.value: member for member in enum_cls}

    def structure(value: object, _: Any) -> object:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise _WireError(f"expected a string, got {_kind(value)}")
        # A value newer than this SDK is kept as it is rather than failing.
        return members.get(value, value)

    return structure


def _optional_of(tp: Any) -> Any:
    """``T`` for ``T | None`` (a single type besides None), else None."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return None
    args = typing.get_args(tp)
    if len(args) != 2 or type(None) not in args:
        return None
    return args[1] if args[0] is type(None) else args[0]


def _drop_unset(fn: Callable[[Any], dict[str, Any]]) -> Callable[[Any], dict[str, Any]]:
    def unstructure(obj: Any) -> dict[str, Any]:
        # None and empty action lists are "unset": the API never sees null or [].
        return {k: v for k, v in fn(obj).items() if v is not None and v != []}

    return unstructure


# What a request's nested objects hold, for the message when something else stands there.
_SHAPES: dict[type[Any], str] = {
    CallControl: "an object of action lists (on_answered, on_no_answer)",
    Recording: "an object (enabled, format, participant, bitrate)",
}


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

    # cattrs' own hook for ``T | None`` looks T's hook up again on every value; this one
    # looks it up once, at its first value (when every hook is registered).
    def make_optional_hook(tp: Any) -> Callable[[object, Any], object]:
        inner = _optional_of(tp)
        hook: Callable[[object, Any], object] | None = None

        def structure_optional(value: object, _: Any) -> object:
            nonlocal hook
            if value is None:
                return None
            if hook is None:
                hook = conv.get_structure_hook(inner)
            return hook(value, inner)

        return structure_optional

    conv.register_structure_hook_factory(lambda t: _optional_of(t) is not None, make_optional_hook)
    conv.register_structure_hook_factory(
        lambda t: _lenient_enum_union(t) is not None, _make_lenient_enum_hook
    )
    conv.register_structure_hook_factory(_is_literal, _make_literal_hook)

    # cattrs reads any iterable as a tuple: an object as its keys, a string as its letters.
    def make_array_hook(tp: Any) -> Callable[[object, Any], tuple[Any, ...]]:
        items = homogenous_tuple_structure_factory(tp, conv)

        def structure_array(value: object, _: Any) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise _WireError(f"expected an array, got {_kind(value)}")
            result: tuple[Any, ...] = items(value, tp)
            return result

        return structure_array

    conv.register_structure_hook_factory(_is_array, make_array_hook)

    overrides = {name: override(rename=wire) for name, wire in _WIRE_RENAMES.items()}

    # Routes first, so the GatherDtmf hooks generated below capture them.
    def unstructure_route(route: DtmfRoute) -> dict[str, Any]:
        return {"digit": route.digit, **conv.unstructure(route.action, unstructure_as=Action)}

    def structure_route(value: object, _: Any) -> DtmfRoute:
        if not isinstance(value, Mapping):
            raise _WireError(f"expected a route object, got {_kind(value)}")
        try:
            digit = _structure_str(value["digit"], str)
        except (KeyError, _WireError) as exc:
            # Noted the way cattrs notes a field, so the message names routes[i].digit.
            exc.add_note(AttributeValidationNote("Structuring DtmfRoute.digit", "digit", str))
            raise ClassValidationError("While structuring DtmfRoute", [exc], DtmfRoute) from None
        rest = {k: v for k, v in value.items() if k != "digit"}
        return DtmfRoute(digit=digit, action=structure_action(rest, Action))

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
            cls, _object_only(make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=False))
        )

    def unstructure_any_action(obj: Any) -> dict[str, Any]:
        result: dict[str, Any] = conv.unstructure(obj, unstructure_as=type(obj))
        return result

    def structure_action(value: object, _: Any) -> Action:
        if not isinstance(value, Mapping):
            raise _WireError(f"expected an action object, got {_kind(value)}")
        name = value.get("action")
        cls = _ACTION_TYPES.get(name) if isinstance(name, str) else None
        if cls is None:
            known = ", ".join(sorted(_ACTION_TYPES))
            raise _WireError(f"unknown action {name!r} (expected one of: {known})")
        fields = {k: v for k, v in value.items() if k != "action"}
        action: Action = conv.structure(fields, cls)
        return action

    conv.register_unstructure_hook(Action, unstructure_any_action)
    conv.register_structure_hook(Action, structure_action)

    # Requests: omit unset optionals; an instant must carry its offset (replies need not).
    for cls in (Recording, CallControl, CallRequest):  # leaves first: hooks are captured
        fields = {f.name for f in attrs.fields(cls)}
        cls_overrides: dict[str, Any] = {k: v for k, v in overrides.items() if k in fields}
        conv.register_unstructure_hook(
            cls, _drop_unset(make_dict_unstructure_fn(cls, conv, **cls_overrides))
        )
        struct_overrides = dict(cls_overrides)
        if "scheduled_for" in fields:
            struct_overrides["scheduled_for"] = override(struct_hook=_structure_request_datetime)
        shape = _SHAPES.get(cls, "an object")
        conv.register_structure_hook(
            cls, _object_only(make_dict_structure_fn(cls, conv, **struct_overrides), shape)
        )

    # Responses: tolerate unknown fields; absent fields fall back to the model's None.
    for cls in (Call, BatchItem, BatchResult):
        fields = {f.name for f in attrs.fields(cls)}
        cls_overrides = {k: v for k, v in overrides.items() if k in fields}
        conv.register_structure_hook(
            cls, _object_only(make_dict_structure_fn(cls, conv, **cls_overrides))
        )
        conv.register_unstructure_hook(
            cls, _drop_unset(make_dict_unstructure_fn(cls, conv, **cls_overrides))
        )
    return conv


converter = make_converter()
"""The converter shared by the whole package."""

_unstructure_request = converter.get_unstructure_hook(CallRequest)
# Looked up once: converter.structure() dispatches on the class again for every reply.
_structure_call = converter.get_structure_hook(Call)
_structure_batch = converter.get_structure_hook(BatchResult)


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


def _decode(body: bytes, cls: type[T], structure: Callable[[Any, type[T]], T]) -> T:
    try:
        data = loads(body)
    except ValueError:
        raise APIResponseValidationError(
            f"expected a JSON {cls.__name__}, got {body[:80]!r}"
        ) from None
    if not isinstance(data, dict):
        raise APIResponseValidationError(f"expected a JSON object for {cls.__name__}")
    try:
        return structure(data, cls)
    except Exception as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc, format_exception=_describe))
        else:
            detail = str(exc)
        raise APIResponseValidationError(f"unreadable {cls.__name__}: {detail}") from exc


def decode_call(body: bytes) -> Call:
    """Parse a call object from a response body."""
    return _decode(body, Call, _structure_call)


def decode_batch(body: bytes) -> BatchResult:
    """Parse a batch reply from a response body."""
    return _decode(body, BatchResult, _structure_batch)


def _path_from_cattrs(location: str) -> str:
    # cattrs reports "... @ $.call_control.on_answered[0]"; we speak "call_control.on_answered[0]".
    path = location.removeprefix("$").removeprefix(".")
    for py_name, wire in _WIRE_RENAMES.items():
        path = path.replace(py_name, wire)
    return path


_EXPECTED: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    datetime: "an ISO 8601 datetime string",
}


def _expected(tp: Any) -> str:
    """What a value of type ``tp`` looks like in JSON ("an object", "one of mp3, wav")."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    if origin is typing.Literal:
        return "one of " + ", ".join(sorted(str(a) for a in args))
    if origin in (tuple, list):
        return "an array"
    if tp in _EXPECTED:
        return _EXPECTED[tp]
    if origin is dict or (isinstance(tp, type) and attrs.has(tp)):
        return "an object"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "a string"
    return getattr(tp, "__name__", repr(tp))


def _describe(exc: BaseException, type_: Any) -> str:
    # Our hooks say what is wrong in JSON's terms; anything else raised while structuring
    # (cattrs' "flac not in literal typing.Literal[...]", Python's "argument of type 'bool'
    # is not iterable") says it in Python's, so say what the field expects instead.
    if isinstance(exc, _WireError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "is required"
    return f"expected {_expected(type_)}" if type_ is not None else "invalid value"


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
