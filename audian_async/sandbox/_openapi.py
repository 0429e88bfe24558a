"""The OpenAPI document of the API: shipped in the package, served by the sandbox.

The document is ``audian_async/openapi.json``, a data file of the package. It describes the
API as this project implements it (the reference plus the decisions the design takes where
the reference is silent); the tests hold it, the SDK's models and the sandbox together.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from .._json import loads

__all__ = ["openapi_bytes", "openapi_document"]


@functools.cache
def openapi_bytes() -> bytes:
    """The document's bytes as shipped, read once (what ``GET /openapi.json`` serves)."""
    return resources.files("audian_async").joinpath("openapi.json").read_bytes()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the Audian API, parsed (a fresh copy on every call).

    The same document the sandbox serves at ``GET /openapi.json``; feed it to a client
    generator, a validator or a fuzzer::

        from audian_async.sandbox import openapi_document

        spec = openapi_document()
        spec["paths"]["/v2/calls"]["post"]["operationId"]   # 'createCall'
    """
    document: dict[str, Any] = loads(openapi_bytes())
    return document
