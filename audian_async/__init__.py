"""audian_async: the async Python SDK for the Audian outbound-calls API.

Place calls from asyncio or trio code with :class:`AsyncAudian`; receive webhooks with
:mod:`audian_async.webhooks`; run campaigns with the dialer; test everything against the local
sandbox in :mod:`audian_async.sandbox`.
"""

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
from ._version import __version__
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
