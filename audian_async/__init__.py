"""audian_async: the async Python SDK for the Audian outbound-calls API.

Place calls from asyncio or trio code with :class:`AsyncAudian`; receive webhooks with
:mod:`audian_async.webhooks`; run campaigns with the dialer; test everything against the local
sandbox in :mod:`audian_async.sandbox`.

The names below are loaded on first use (PEP 562), so that a process importing one part of
the package (a webhook endpoint imports :mod:`audian_async.webhooks` alone) does not load the
others: the HTTP client stack, the dialer and their dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._client import DEFAULT_BASE_URL, AsyncAudian, Calls
    from ._convert import APIResponseValidationError
    from ._errors import (
        APIConnectionError,
        APIStatusError,
        APITimeoutError,
        AudianError,
        AuthenticationError,
        BadRequestError,
        Disposition,
        InvalidNumberError,
        NotFoundError,
        PayloadTooLargeError,
        PermissionDeniedError,
        RateLimitedError,
        ServerError,
        UnauthorizedCallerIdError,
        ValidationError,
        WebhookError,
    )
    from ._models import (
        Action,
        BatchItem,
        BatchResult,
        Call,
        CallControl,
        CallRequest,
        CallStatus,
        DtmfRoute,
        FailureReason,
        GatherDtmf,
        Hangup,
        PlayAudio,
        RecordAudio,
        Recording,
        Transfer,
    )
    from ._validation import CheckedCallRequest, normalize_number, validate_call_request
    from ._window import CallingWindow
    from .dialer import (
        CallOutcome,
        CampaignReport,
        CampaignStore,
        Dialer,
        MemoryStore,
        RedisStore,
        RetryPolicy,
        SQLiteStore,
    )

# Where each public name lives, relative to this package.
_EXPORTS: dict[str, str] = {
    "DEFAULT_BASE_URL": "._client",
    "AsyncAudian": "._client",
    "Calls": "._client",
    "APIResponseValidationError": "._convert",
    "APIConnectionError": "._errors",
    "APIStatusError": "._errors",
    "APITimeoutError": "._errors",
    "AudianError": "._errors",
    "AuthenticationError": "._errors",
    "BadRequestError": "._errors",
    "Disposition": "._errors",
    "InvalidNumberError": "._errors",
    "NotFoundError": "._errors",
    "PayloadTooLargeError": "._errors",
    "PermissionDeniedError": "._errors",
    "RateLimitedError": "._errors",
    "ServerError": "._errors",
    "UnauthorizedCallerIdError": "._errors",
    "ValidationError": "._errors",
    "WebhookError": "._errors",
    "Action": "._models",
    "BatchItem": "._models",
    "BatchResult": "._models",
    "Call": "._models",
    "CallControl": "._models",
    "CallRequest": "._models",
    "CallStatus": "._models",
    "DtmfRoute": "._models",
    "FailureReason": "._models",
    "GatherDtmf": "._models",
    "Hangup": "._models",
    "PlayAudio": "._models",
    "RecordAudio": "._models",
    "Recording": "._models",
    "Transfer": "._models",
    "CheckedCallRequest": "._validation",
    "normalize_number": "._validation",
    "validate_call_request": "._validation",
    "CallingWindow": "._window",
    "CallOutcome": ".dialer",
    "CampaignReport": ".dialer",
    "CampaignStore": ".dialer",
    "Dialer": ".dialer",
    "MemoryStore": ".dialer",
    "RedisStore": ".dialer",
    "RetryPolicy": ".dialer",
    "SQLiteStore": ".dialer",
}

__all__ = [
    "DEFAULT_BASE_URL",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "Action",
    "AsyncAudian",
    "AudianError",
    "AuthenticationError",
    "BadRequestError",
    "BatchItem",
    "BatchResult",
    "Call",
    "CallControl",
    "CallOutcome",
    "CallRequest",
    "CallStatus",
    "CallingWindow",
    "Calls",
    "CampaignReport",
    "CampaignStore",
    "CheckedCallRequest",
    "Dialer",
    "Disposition",
    "DtmfRoute",
    "FailureReason",
    "GatherDtmf",
    "Hangup",
    "InvalidNumberError",
    "MemoryStore",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PlayAudio",
    "RateLimitedError",
    "RecordAudio",
    "Recording",
    "RedisStore",
    "RetryPolicy",
    "SQLiteStore",
    "ServerError",
    "Transfer",
    "UnauthorizedCallerIdError",
    "ValidationError",
    "WebhookError",
    "__version__",
    "normalize_number",
    "validate_call_request",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # looked up like any module attribute from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
