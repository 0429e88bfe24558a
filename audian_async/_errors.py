"""The error hierarchy, and the pure mapping from an HTTP error response to an error.

Everything the SDK raises on purpose is an :class:`AudianError`, so one ``except`` clause
catches all of it. The mapping from a response to an error lives here, free of I/O, so it is
tested without a server.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from ._json import loads

__all__ = [
    "APIConnectionError",
    "APIStatusError",
    "APITimeoutError",
    "AudianError",
    "AuthenticationError",
    "BadRequestError",
    "Disposition",
    "InvalidNumberError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "ServerError",
    "UnauthorizedCallerIdError",
    "ValidationError",
    "WebhookError",
    "disposition_for_status",
    "error_from_response",
]


class Disposition(enum.Enum):
    """What a failed request proves about the API's side: did it act?

    Computed once where the error is made and carried on every error as
    ``error.disposition``, so retry loops (the client's, the dialer's, yours) read it instead
    of re-deriving it from status codes and exception types::

        try:
            call = await client.calls.create(request, idempotency_key=key)
        except au.AudianError as exc:
            if exc.disposition is au.Disposition.NOT_ACTED:
                ...  # nothing happened: send it again (any key)
            elif exc.disposition is au.Disposition.MAYBE_ACTED:
                ...  # a call may exist: send it again only with the SAME idempotency key
    """

    NOT_ACTED = "not_acted"
    """The API provably did nothing: the request never left (connection refused, connect or
    pool timeout), or it said so (429, 503). Safe to send again."""
    MAYBE_ACTED = "maybe_acted"
    """The request may have been acted on (read timeout, connection lost after sending, 408,
    500, 502, 504): a create may have placed its call. Repeat it only with the same
    idempotency key."""
    ACCOUNT = "account"
    """The account or setup is wrong (401, a 403 other than ``unauthorized_caller_id``): no
    request can succeed until it is fixed."""
    REFUSED = "refused"
    """The API (or the client's own validation) refused this request for good: sending it
    again gets the same answer."""


_NOT_ACTED_STATUS = frozenset({429, 503})
_MAYBE_ACTED_STATUS = frozenset({408, 500, 502, 504})


def disposition_for_status(status_code: int, error: str | None = None) -> Disposition:
    """The :class:`Disposition` of an error response with this status and error code."""
    if status_code in _NOT_ACTED_STATUS:
        return Disposition.NOT_ACTED
    if status_code in _MAYBE_ACTED_STATUS:
        return Disposition.MAYBE_ACTED
    if status_code == 401 or (status_code == 403 and error != "unauthorized_caller_id"):
        return Disposition.ACCOUNT
    return Disposition.REFUSED


class AudianError(Exception):
    """Base class of every error the SDK raises on purpose.

    ``disposition`` says whether the API may have acted on the failed request (see
    :class:`Disposition`); an error raised before anything was sent is ``REFUSED``.
    """

    disposition: Disposition = Disposition.REFUSED


class ValidationError(AudianError, ValueError):
    """Input was rejected on the client, before any request was sent.

    ``field`` is the path of the offending value, e.g.
    ``"call_control.on_answered[1].routes[0].digit"`` or ``"calls[3].to"`` in a batch.
    ``hint``, when not None, is advice on getting past the rule with an SDK option
    (``"pass default_region= to accept national numbers"``); ``message`` ends with it.
    """

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        self.field = field
        self.hint = hint
        self._rule = message
        self.message = f"{message}; {hint}" if hint else message
        super().__init__(f"{field}: {self.message}" if field else self.message)

    def at(self, prefix: str) -> ValidationError:
        """Return the same error with ``prefix`` put in front of its field path."""
        if not self.field:
            path = prefix
        elif self.field.startswith("["):
            path = f"{prefix}{self.field}"
        else:
            path = f"{prefix}.{self.field}"
        return ValidationError(path, self._rule, hint=self.hint)

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle as ``cls(*args)``; ``args`` holds the joined text only. Errors
        # cross process boundaries (worker pools, multiprocessing), so rebuild from parts.
        return (_validation_error, (self.field, self._rule, self.hint))

    def without_hint(self) -> ValidationError:
        """The same error without its ``hint``, for a reader who has no SDK options (the
        sandbox's clients, who speak HTTP)."""
        return self if self.hint is None else ValidationError(self.field, self._rule)


def _validation_error(field: str, message: str, hint: str | None) -> ValidationError:
    return ValidationError(field, message, hint=hint)


class WebhookError(AudianError):
    """A webhook delivery could not be verified or parsed."""


class APIConnectionError(AudianError):
    """The API could not be reached, or the connection broke before a full reply arrived.

    ``sent`` is False only when the request provably never left (connection refused, connect
    or pool timeout): ``disposition`` is then ``NOT_ACTED``. When it is True
    (``MAYBE_ACTED``) a POST may have been acted on: repeat it with the same
    ``idempotency_key`` rather than a new one.
    """

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        self.sent = sent
        self.disposition = Disposition.MAYBE_ACTED if sent else Disposition.NOT_ACTED


class APITimeoutError(APIConnectionError):
    """The request timed out (connecting, waiting for a pooled connection, or reading)."""


class APIStatusError(AudianError):
    """The API answered with an error status.

    ``error`` is the API's machine-readable code (``"invalid_number"``) when the body carried
    one, ``message`` its human-readable text, ``body`` the raw body bytes and ``headers`` the
    response headers (lower-cased names).
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.message = message
        self.body = body
        self.headers: Mapping[str, str] = dict(headers or {})
        self.disposition = disposition_for_status(status_code, error)
        label = f" {error}" if error else ""
        super().__init__(f"{status_code}{label}: {message}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code!r}, "
            f"error={self.error!r}, message={self.message!r})"
        )


class BadRequestError(APIStatusError):
    """400: the API rejected the request's content."""


class InvalidNumberError(BadRequestError):
    """400 ``invalid_number``: the API rejected a phone number."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the account may not do this."""


class UnauthorizedCallerIdError(PermissionDeniedError):
    """403 ``unauthorized_caller_id``: the account does not own the ``from`` number."""


class NotFoundError(APIStatusError):
    """404: no such call."""


class PayloadTooLargeError(APIStatusError):
    """413: the request body was larger than the API accepts."""


class RateLimitedError(APIStatusError):
    """429: too many concurrent calls or requests.

    ``retry_after`` is the server's hint in seconds, or ``None`` when it gave none.
    """

    def __init__(
        self,
        status_code: int,
        error: str | None,
        message: str,
        body: bytes = b"",
        headers: Mapping[str, str] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(status_code, error, message, body, headers)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx: the API failed."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: RateLimitedError,
}
_BY_CODE: dict[str, type[APIStatusError]] = {
    "invalid_number": InvalidNumberError,
    "unauthorized_caller_id": UnauthorizedCallerIdError,
}


def _error_class(status_code: int, error: str | None) -> type[APIStatusError]:
    if error is not None:
        special = _BY_CODE.get(error)
        # Only trust the code where it agrees with the status family it belongs to.
        if special is not None and issubclass(special, _BY_STATUS.get(status_code, ServerError)):
            return special
    if status_code >= 500:
        return ServerError
    return _BY_STATUS.get(status_code, APIStatusError)


def error_from_response(
    status_code: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    retry_after: float | None = None,
) -> APIStatusError:
    """Map an error response to the most specific :class:`APIStatusError`.

    A JSON body in the API's shape (``{"error", "message", "code"}``) supplies the code and
    message; any other body (HTML from a proxy, plain text, nothing) still maps by status.
    """
    error: str | None = None
    message = ""
    try:
        parsed: Any = loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        raw_error = parsed.get("error")
        if isinstance(raw_error, str):
            error = raw_error
        elif isinstance(raw_error, dict):  # tolerate {"error": {"code": ..., "message": ...}}
            code = raw_error.get("code") or raw_error.get("type")
            error = code if isinstance(code, str) else None
            nested = raw_error.get("message")
            message = nested if isinstance(nested, str) else ""
        raw_message = parsed.get("message")
        if isinstance(raw_message, str):
            message = raw_message
    if not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = text or f"HTTP {status_code}"
    cls = _error_class(status_code, error)
    if cls is RateLimitedError:
        return RateLimitedError(status_code, error, message, body, headers, retry_after)
    return cls(status_code, error, message, body, headers)
