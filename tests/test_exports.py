"""The public surface is explicit, sorted and importable."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["audian_async", "audian_async.webhooks"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_complete(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert len(set(exported)) == len(exported)
    # isort-style: CONSTANTS first, then everything else in plain string order.
    assert list(exported) == sorted(exported, key=lambda n: (not n.isupper(), n))
    for attr in exported:
        assert hasattr(module, attr), attr


def test_contract_names_exist() -> None:
    import audian_async as au
    from audian_async import webhooks

    for attr in [
        "AsyncAudian",
        "CallRequest",
        "Call",
        "BatchResult",
        "Recording",
        "CallControl",
        "PlayAudio",
        "RecordAudio",
        "Transfer",
        "Hangup",
        "GatherDtmf",
        "DtmfRoute",
        "AudianError",
        "ValidationError",
        "APIConnectionError",
        "APITimeoutError",
        "APIStatusError",
        "BadRequestError",
        "InvalidNumberError",
        "AuthenticationError",
        "PermissionDeniedError",
        "UnauthorizedCallerIdError",
        "NotFoundError",
        "RateLimitedError",
        "ServerError",
    ]:
        assert hasattr(au, attr), attr
    for attr in ["sign", "verify", "WebhookError"]:
        assert hasattr(webhooks, attr), attr
    assert issubclass(au.ValidationError, ValueError)
    assert issubclass(au.APITimeoutError, au.APIConnectionError)
    assert issubclass(au.InvalidNumberError, au.BadRequestError)
    assert issubclass(au.UnauthorizedCallerIdError, au.PermissionDeniedError)
    assert webhooks.WebhookError is au.WebhookError
