"""JSON encoding and decoding: orjson when installed (the ``orjson`` extra), else the stdlib.

Both functions work on bytes, which is what travels on the wire; the stdlib fallback produces
the same compact output orjson does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["canonical", "dumps", "loads"]

dumps: Callable[[Any], bytes]
"""Encode a value as compact UTF-8 JSON."""
loads: Callable[[bytes | str], Any]
"""Decode JSON; raises ``ValueError`` on malformed input."""

try:
    import orjson
except ImportError:  # pragma: no cover - exercised when the extra is absent
    # Strict like orjson: NaN and Infinity are not JSON, in either direction.
    _encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    _sorted_encoder = json.JSONEncoder(
        separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
    )

    def _no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    def _dumps(value: Any) -> bytes:
        return _encoder.encode(value).encode()

    def canonical(value: Any) -> bytes:
        """Compact JSON with every object's keys sorted (see the orjson version)."""
        return _sorted_encoder.encode(value).encode()

    def _loads(data: bytes | str) -> Any:
        try:
            return json.loads(data, parse_constant=_no_constants)
        except RecursionError:
            raise ValueError("JSON nested too deeply") from None

    dumps = _dumps
    loads = _loads

else:
    # orjson's own functions, not wrappers: one Python call fewer for every body the client
    # and the webhook endpoint decode. Both raise orjson.JSONDecodeError/JSONEncodeError,
    # which are ValueError and TypeError subclasses, as the stdlib versions above do.
    dumps = orjson.dumps
    loads = orjson.loads

    def canonical(value: Any) -> bytes:
        """Compact JSON with every object's keys sorted: the same bytes for equal decoded
        values, whatever key order and whitespace they were written with."""
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
