"""Receive Audian webhooks: verify signatures, parse typed events, route them to handlers."""

from .._errors import WebhookError
from ._signing import DEFAULT_TOLERANCE, sign, verify

__all__ = ["DEFAULT_TOLERANCE", "WebhookError", "sign", "verify"]
