"""A faithful local emulator of the Audian API: simulated calls, signed webhooks, faults.

Start it from Python (``async with Sandbox() as sb:``), from the command line
(``audian-async sandbox``) or from pytest (the ``audian_sandbox`` fixture of
:mod:`audian_async.testing`). Destination numbers in :data:`MAGIC_NUMBERS` force each outcome;
:func:`openapi_document` is the OpenAPI 3.1 document of the API it serves at ``/openapi.json``.
"""

from ._app import SandboxApp
from ._control import DIGITS_TAG, TALK_SECONDS_TAG
from ._faults import ROUTES, Faults
from ._magic import MAGIC_NUMBERS, OWNED_CALLER_ID
from ._openapi import openapi_document
from ._records import SandboxCall, SandboxEvent, SandboxRecording
from ._sender import Delivery
from ._server import Sandbox
from ._settings import (
    DEFAULT_API_KEY,
    MAX_BODY,
    SandboxOptions,
    SandboxSettings,
    generate_webhook_secret,
)

__all__ = [
    "DEFAULT_API_KEY",
    "DIGITS_TAG",
    "MAGIC_NUMBERS",
    "MAX_BODY",
    "OWNED_CALLER_ID",
    "ROUTES",
    "TALK_SECONDS_TAG",
    "Delivery",
    "Faults",
    "Sandbox",
    "SandboxApp",
    "SandboxCall",
    "SandboxEvent",
    "SandboxOptions",
    "SandboxRecording",
    "SandboxSettings",
    "generate_webhook_secret",
    "openapi_document",
]
