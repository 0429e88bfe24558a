"""The OpenAPI document as test helpers: JSON Schema validators for its parts.

The document's schemas are JSON Schema 2020-12 (OpenAPI 3.1); they are checked with
``jsonschema`` against a registry holding the whole document, so every ``$ref`` resolves as
a client's validator would resolve it. Formats (``date-time``, ``uuid``) are checked too.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from audian_async.sandbox import openapi_document

DOCUMENT: dict[str, Any] = openapi_document()

INEXPRESSIBLE_REFUSALS = (
    "is not a valid phone number",  # a well-formed number that cannot exist
    "You are not authorized to use this caller ID",  # a number the account does not own
    "is defined twice",  # DTMF route digits are unique per menu
    "levels deep",  # tags and custom fields nest at most 32 levels
    "must fit in 64 bits",
    "cannot be stored",  # what the JSON writer refuses
    "not valid JSON",  # a lone surrogate: JSON Schema strings allow it, UTF-8 does not
    "Idempotency-Key was already used",  # the same key again with another body
    "outside the range UTC can express",  # 0001-01-01T00:00+14:00 has no UTC form
)
"""What the ``message`` of a refusal of a request the document calls valid may say: the
rules JSON Schema cannot express (the document states them in words)."""
_URI = "urn:audian:openapi"
_REGISTRY: Registry[Any] = Registry().with_resource(
    _URI, Resource(contents=DOCUMENT, specification=DRAFT202012)
)


def validator(pointer: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema at ``pointer`` in the document
    (``"/components/schemas/Call"``)."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_URI}#{pointer}"},
        registry=_REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator of ``components/schemas/<name>``."""
    return validator(f"/components/schemas/{name}")


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def resolve(node: Any) -> Any:
    """``node`` with its ``$ref`` followed (document-local refs only), repeatedly."""
    while isinstance(node, Mapping) and "$ref" in node:
        target: Any = DOCUMENT
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def response(path: str, method: str, status: int) -> dict[str, Any]:
    """The response object documented for ``status`` of ``method path`` (KeyError if none)."""
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    found: dict[str, Any] = resolve(responses[str(status)])
    return found


def response_validator(
    path: str, method: str, status: int, media: str = "application/json"
) -> jsonschema.Draft202012Validator:
    """A validator of the body documented for ``status`` of ``method path``."""
    responses = DOCUMENT["paths"][path][method.lower()]["responses"]
    entry = responses[str(status)]
    if "$ref" in entry:
        pointer = entry["$ref"].removeprefix("#")
    else:
        pointer = f"/paths/{_escape(path)}/{method.lower()}/responses/{status}"
    return validator(f"{pointer}/content/{_escape(media)}/schema")


def undocumented_keys(instance: Any, schema: Any, where: str = "") -> Iterator[str]:
    """Paths of object keys in ``instance`` that ``schema`` does not name.

    The document leaves additional properties open (clients must tolerate new fields), so a
    field the sandbox sends without documenting it would validate; this finds it. Objects
    without declared ``properties`` (tags, custom fields), or that declare additional ones
    welcome, are free-form and not looked into.
    """
    schema = resolve(schema)
    if not isinstance(schema, Mapping) or schema.get("additionalProperties") is True:
        return
    branches = [resolve(b) for key in ("allOf", "anyOf", "oneOf") for b in schema.get(key, ())]
    if isinstance(instance, dict):
        properties: dict[str, Any] = dict(schema.get("properties", {}))
        for branch in branches:
            properties.update(branch.get("properties", {}))
        if not properties:
            return
        for key, value in instance.items():
            if key not in properties:
                yield f"{where}.{key}"
            else:
                yield from undocumented_keys(value, properties[key], f"{where}.{key}")
    elif isinstance(instance, list):
        items = [schema.get("items")] + [b.get("items") for b in branches]
        for item_schema in filter(None, items):
            for i, value in enumerate(instance):
                yield from undocumented_keys(value, item_schema, f"{where}[{i}]")


def check_body(path: str, method: str, status: int, body: Any) -> None:
    """Assert that ``body`` is what the document says ``status`` of ``method path`` answers,
    naming every field, and nothing it does not document."""
    validator = response_validator(path, method, status)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, (method, path, status, errors, repr(body)[:500])
    schema = response(path, method, status)["content"]["application/json"]["schema"]
    extra = list(undocumented_keys(body, schema))
    assert not extra, (method, path, status, f"undocumented fields {extra}", repr(body)[:500])


def check_headers(path: str, method: str, status: int, headers: Mapping[str, str]) -> None:
    """Assert that the documented response headers are present when required and valid."""
    documented = response(path, method, status).get("headers", {})
    for name, header in documented.items():
        header = resolve(header)
        value = headers.get(name.lower())
        if value is None:
            assert not header.get("required"), f"{method} {path} {status}: no {name} header"
            continue
        errors = [e.message for e in validator_for_header(header).iter_errors(value)]
        assert not errors, (name, value, errors)


def validator_for_header(header: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator of a header object's schema (document refs resolved)."""
    return jsonschema.Draft202012Validator(
        header["schema"],
        registry=_REGISTRY,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def conforms(path: str, method: str, reply: httpx.Response) -> None:
    """Assert that ``reply`` is an answer the document gives to ``method path`` (a path
    template, ``"/v2/calls/{call_id}"``): a documented status, media type, headers and body."""
    status = reply.status_code
    documented = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(status) in documented, f"{method} {path}: undocumented {status} {reply.text}"
    media = reply.headers.get("content-type", "").split(";")[0].strip()
    content = resolve(documented[str(status)]).get("content", {})
    assert media in content, f"{method} {path} {status}: undocumented media type {media!r}"
    if media == "application/json":
        check_body(path, method, status, reply.json())
    check_headers(path, method, status, reply.headers)
