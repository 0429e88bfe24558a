"""The public surface of audian_async.webhooks is pinned."""

from __future__ import annotations

import audian_async.webhooks as webhooks


def test_all_is_pinned() -> None:
    assert webhooks.__all__ == [
        "DEFAULT_TOLERANCE",
        "EVENT_TYPES",
        "MAX_BODY",
        "CallAnswered",
        "CallCompleted",
        "CallFailed",
        "CallInitiated",
        "CallRinging",
        "DedupeStore",
        "Event",
        "EventRouter",
        "Handler",
        "InMemoryDedupeStore",
        "RecordingCompleted",
        "RedisDedupeStore",
        "Subscription",
        "UnknownEvent",
        "WebhookApp",
        "WebhookError",
        "decode_secret",
        "parse_event",
        "sign",
        "verify",
    ]


def test_event_classes_are_events_with_their_types() -> None:
    assert {t: c.__name__ for t, c in webhooks.EVENT_TYPES.items()} == {
        "call.initiated": "CallInitiated",
        "call.ringing": "CallRinging",
        "call.answered": "CallAnswered",
        "call.completed": "CallCompleted",
        "call.failed": "CallFailed",
        "recording.completed": "RecordingCompleted",
    }
    for cls in webhooks.EVENT_TYPES.values():
        assert issubclass(cls, webhooks.Event)
        assert cls().type == cls.EVENT_TYPE
    assert webhooks.WebhookError.__module__ == "audian_async._errors"
