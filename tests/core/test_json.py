"""The stdlib JSON fallback (no orjson installed) behaves like orjson where it matters."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

import audian_async._json as fast


@pytest.fixture
def fallback(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setitem(sys.modules, "orjson", None)  # import orjson -> ImportError
    path = Path(fast.__file__)
    spec = importlib.util.spec_from_file_location("audian_json_fallback", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.json is json
    return module


@pytest.mark.parametrize("module_name", ["fast", "fallback"])
def test_same_compact_output(module_name: str, fallback: ModuleType) -> None:
    module = fast if module_name == "fast" else fallback
    value = {"from": "+14155552671", "tags": {"é": [1, 2.5, None, True]}}
    assert module.dumps(value) == b'{"from":"+14155552671","tags":{"\xc3\xa9":[1,2.5,null,true]}}'
    assert module.loads(module.dumps(value)) == value


@pytest.mark.parametrize("text", ["NaN", '{"x": Infinity}', "[-Infinity]"])
def test_fallback_refuses_non_json_constants(fallback: ModuleType, text: str) -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        fallback.loads(text)
    with pytest.raises(ValueError):  # noqa: PT011 - orjson's own message
        fast.loads(text)


def test_fallback_refuses_to_write_nan(fallback: ModuleType) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        fallback.dumps({"x": float("nan")})


def test_fallback_turns_deep_nesting_into_value_error(fallback: ModuleType) -> None:
    with pytest.raises(ValueError, match="deep"):
        fallback.loads("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("module_name", ["fast", "fallback"])
def test_canonical_sorts_keys_at_every_level(module_name: str, fallback: ModuleType) -> None:
    module = fast if module_name == "fast" else fallback
    one = module.loads(b'{"b": {"y": 1, "x": [2, {"q": 1, "p": 0}]}, "a": "\\u00e9"}')
    other = module.loads(b'{"a":"\xc3\xa9","b":{"x":[2,{"p":0,"q":1}],"y":1}}')
    assert module.canonical(one) == module.canonical(other)
    assert module.canonical(one) == b'{"a":"\xc3\xa9","b":{"x":[2,{"p":0,"q":1}],"y":1}}'
