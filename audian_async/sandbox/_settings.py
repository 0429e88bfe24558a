"""The sandbox's settings: one validated object that the server, the app and the CLI share."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

import attrs

from .._errors import ValidationError, WebhookError
from .._validation import normalize_number
from ..webhooks._signing import decode_secret
from ._faults import Faults

__all__ = [
    "DEFAULT_API_KEY",
    "MAX_BODY",
    "SandboxOptions",
    "SandboxSettings",
    "generate_webhook_secret",
    "resolve_settings",
]

DEFAULT_API_KEY = "sk_test_sandbox"
"""The sandbox's API key unless another is given (it guards nothing real: loopback only)."""
MAX_BODY = 1 << 20
"""Request bodies above 1 MiB are refused with 413 without being read."""


def generate_webhook_secret() -> str:
    """A fresh ``whsec_<base64>`` secret, as the sandbox uses when none is given."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _is_number(value: object) -> bool:
    """True for an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but a number above zero."""
    if not _is_number(value) or not value > 0:  # type: ignore[operator]
        raise ValidationError(attribute.name, f"must be a positive number, got {value!r}")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but a number of zero or more."""
    if not _is_number(value) or not value >= 0:  # type: ignore[operator]
        raise ValidationError(attribute.name, f"must be zero or more, got {value!r}")


def _count(minimum: int) -> Any:
    """A validator of integers of at least ``minimum``."""

    def check(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValidationError(attribute.name, f"must be an integer >= {minimum}, got {value!r}")

    return check


def _rate(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse anything but a fraction between 0 and 1."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise ValidationError(attribute.name, f"must be between 0 and 1, got {value!r}")


def _api_key(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    """Refuse an empty or non-string key (never echoing it)."""
    if not isinstance(value, str) or not value:
        raise ValidationError(attribute.name, "must be a non-empty string")


def _secret_or_new(value: str | None) -> str:
    """The given secret, or a fresh one when None or empty."""
    return value or generate_webhook_secret()


def _webhook_secret(_: object, attribute: attrs.Attribute[Any], value: str) -> None:
    """Decode the secret once, so a bad one fails when the settings are made."""
    try:
        decode_secret(value)
    except WebhookError as exc:
        # The message names the problem, never the secret itself.
        raise ValidationError(attribute.name, str(exc)) from None


def _caller_ids(values: Iterable[str]) -> tuple[str, ...]:
    """Each caller ID in E.164 (ValidationError naming ``caller_ids`` otherwise)."""
    if isinstance(values, str):
        values = (values,)
    return tuple(normalize_number(number, "caller_ids") for number in values)


def _urls(values: Iterable[str]) -> tuple[str, ...]:
    """The webhook URLs as a tuple (a lone string is one URL, not its characters)."""
    return (values,) if isinstance(values, str) else tuple(values)


def _options(value: Mapping[str, Any] | None) -> dict[str, Any]:
    """A private copy of the client options."""
    return dict(value or {})


@attrs.frozen(kw_only=True)
class SandboxSettings:
    """Everything a sandbox is started with, validated once.

    :class:`Sandbox`, :class:`SandboxApp` and ``audian-async sandbox`` all take their
    configuration from one of these; ``Sandbox(**options)`` and ``SandboxApp(**options)``
    build it from their keyword arguments, and ``Sandbox(settings, speed=100)`` overrides
    some. Invalid values raise :class:`~audian_async.ValidationError` naming the setting.

    >>> settings = SandboxSettings(speed=50, max_concurrent=5, seed=7)
    >>> faster = Sandbox(settings, speed=100)  # doctest: +SKIP
    """

    host: str = "127.0.0.1"
    """The address to bind."""
    port: int = attrs.field(default=0, validator=_count(0))
    """The port to bind; 0 picks a free one."""
    api_key: str = attrs.field(default=DEFAULT_API_KEY, validator=_api_key, repr=False)
    """The API key the sandbox accepts (``X-Auth-Token`` or ``Authorization: Bearer``)."""
    webhook_urls: tuple[str, ...] = attrs.field(default=(), converter=_urls)
    """Every event is delivered to each of these URLs."""
    webhook_secret: str = attrs.field(
        default=None, converter=_secret_or_new, validator=_webhook_secret, repr=False
    )
    """The ``whsec_...`` secret webhooks are signed with (default: a fresh random one)."""
    caller_ids: tuple[str, ...] = attrs.field(default=(), converter=_caller_ids)
    """Caller IDs the account owns besides +14155552671 (others get 403)."""
    speed: float = attrs.field(default=1.0, validator=_positive)
    """Divides every simulated duration: ringing, talking, timeouts, webhook backoff."""
    max_concurrent: int = attrs.field(default=100, validator=_count(0))
    """The live-call limit behind 429 (changeable at runtime on the sandbox)."""
    max_scheduled: int = attrs.field(default=10_000, validator=_count(0))
    """How many calls may wait for their ``scheduled_for`` at once (429 beyond)."""
    drop_rate: float = attrs.field(default=0.0, validator=_rate)
    """The fraction of webhook deliveries never sent (recorded as ``dropped``)."""
    duplicate_rate: float = attrs.field(default=0.0, validator=_rate)
    """The fraction of webhook deliveries sent twice with the same ``webhook-id``."""
    seed: int | None = None
    """Makes every random choice a function of the seed and what it decides (see docs/sandbox.md,
    "Seeded runs"); None: random."""
    faults: Faults = attrs.field(factory=Faults, validator=attrs.validators.instance_of(Faults))
    """Latency and error injection, changeable while the sandbox runs (default: none). A
    :class:`Faults` without a seed of its own uses ``seed``. The object is shared, not
    copied: every sandbox made from these settings changes with it."""
    webhook_max_attempts: int = attrs.field(default=5, validator=_count(1))
    """Delivery attempts per event and URL before giving up."""
    webhook_timeout: float = attrs.field(default=5.0, validator=_positive)
    """Seconds a receiver has to answer one delivery."""
    webhook_workers: int = attrs.field(default=16, validator=_count(1))
    """Concurrent deliveries."""
    drain_timeout: float = attrs.field(default=2.0, validator=_not_negative)
    """Seconds a stopping sandbox waits for deliveries in flight."""
    max_body: int = attrs.field(default=MAX_BODY, validator=_count(1))
    """Request bodies above this many bytes get 413."""
    client_options: dict[str, Any] = attrs.field(factory=dict, converter=_options)
    """Keyword arguments for the :class:`~audian_async.AsyncAudian` of ``Sandbox.client``."""

    @property
    def webhook_key(self) -> bytes:
        """The HMAC key of :attr:`webhook_secret`."""
        return decode_secret(self.webhook_secret)


class SandboxOptions(TypedDict, total=False):
    """The keyword arguments of ``Sandbox(...)`` and ``SandboxApp(...)``: the fields of
    :class:`SandboxSettings`, so type checkers catch a misspelt or mistyped option."""

    host: str
    port: int
    api_key: str
    webhook_urls: Iterable[str]
    webhook_secret: str | None
    caller_ids: Iterable[str]
    speed: float
    max_concurrent: int
    max_scheduled: int
    drop_rate: float
    duplicate_rate: float
    seed: int | None
    faults: Faults
    webhook_max_attempts: int
    webhook_timeout: float
    webhook_workers: int
    drain_timeout: float
    max_body: int
    client_options: Mapping[str, Any] | None


def resolve_settings(
    settings: SandboxSettings | None, options: Mapping[str, Any]
) -> SandboxSettings:
    """``settings`` with ``options`` applied, or settings made of ``options`` alone."""
    if settings is None:
        return SandboxSettings(**options)
    if not isinstance(settings, SandboxSettings):
        raise TypeError(f"settings must be a SandboxSettings, got {type(settings).__name__}")
    return attrs.evolve(settings, **options) if options else settings
