"""SandboxSettings: one validated configuration for the server, the app and the command."""

from __future__ import annotations

import argparse
from typing import Any

import attrs
import pytest

import audian_async as au
from audian_async.cli import sandbox as command
from audian_async.sandbox import (
    DEFAULT_API_KEY,
    Faults,
    Sandbox,
    SandboxApp,
    SandboxSettings,
)
from audian_async.webhooks._signing import decode_secret


def test_keyword_arguments_build_the_settings() -> None:
    faults = Faults(latency=0.5)
    options: dict[str, Any] = {
        "speed": 20,
        "max_concurrent": 3,
        "caller_ids": ["+1 415 555 2680"],
        "webhook_urls": ["http://127.0.0.1:9/hooks"],
        "seed": 4,
        "faults": faults,
    }
    sandbox = Sandbox(**options)
    app = SandboxApp(**options)
    assert attrs.evolve(sandbox.settings, webhook_secret=app.settings.webhook_secret) == (
        app.settings
    )
    settings = sandbox.settings
    assert (settings.speed, settings.max_concurrent, settings.seed) == (20, 3, 4)
    assert settings.caller_ids == ("+14155552680",)
    assert "+14155552680" in sandbox.app.caller_ids
    assert sandbox.faults is faults
    assert sandbox.app.faults is faults
    assert sandbox.app.engine.max_concurrent == 3
    assert sandbox.app.deliverer.urls == ("http://127.0.0.1:9/hooks",)


def test_settings_are_given_whole_or_overridden() -> None:
    base = SandboxSettings(speed=10, api_key="sk_mine")
    assert Sandbox(base).settings is base
    assert SandboxApp(settings=base).settings is base
    faster = Sandbox(base, speed=100)
    assert (faster.speed, faster.api_key) == (100, "sk_mine")
    assert base.speed == 10
    with pytest.raises(TypeError):
        Sandbox(sped=100)


def test_defaults() -> None:
    settings = SandboxSettings()
    assert settings.api_key == DEFAULT_API_KEY
    assert decode_secret(settings.webhook_secret)
    assert settings.webhook_secret != SandboxSettings().webhook_secret  # fresh each time
    assert (settings.host, settings.port, settings.speed) == ("127.0.0.1", 0, 1)
    assert settings.seed is None
    assert settings.faults == Faults()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("speed", 0),
        ("speed", -1.0),
        ("speed", "fast"),
        ("drop_rate", 1.5),
        ("duplicate_rate", -0.1),
        ("max_concurrent", -1),
        ("max_concurrent", 2.5),
        ("webhook_workers", 0),
        ("webhook_max_attempts", True),
        ("webhook_timeout", 0),
        ("drain_timeout", -1),
        ("port", -1),
        ("api_key", ""),
        ("webhook_secret", "whsec_not*base64"),
        ("caller_ids", ["not a number"]),
    ],
)
def test_invalid_settings_name_the_setting(field: str, value: object) -> None:
    for make in (SandboxSettings, Sandbox, SandboxApp):
        with pytest.raises(au.ValidationError) as refused:
            make(**{field: value})
        assert refused.value.field == field
        # Both what Sandbox raised (AudianError) and what the engine raised (ValueError).
        assert isinstance(refused.value, au.AudianError)
        assert isinstance(refused.value, ValueError)


def test_faults_must_be_a_faults() -> None:
    with pytest.raises(TypeError):
        SandboxSettings(faults={"latency": 1})  # type: ignore[arg-type]


def test_secrets_stay_out_of_the_repr() -> None:
    settings = SandboxSettings(api_key="sk_secret_key", webhook_secret="whsec_" + "QUJD" * 8)
    assert "sk_secret_key" not in repr(settings)
    assert "QUJD" not in repr(settings)
    assert "sk_secret_key" not in repr(Sandbox(settings))


def test_the_command_defaults_are_the_settings_defaults() -> None:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args([])
    defaults = SandboxSettings()
    for option in ("host", "api_key", "speed", "max_concurrent", "drop_rate", "duplicate_rate"):
        assert getattr(args, option) == getattr(defaults, option), option
    assert (args.latency, args.error_status) == (defaults.faults.latency, 503)
    assert args.port == 8443  # a fixed port for the command line, unlike the library's 0
