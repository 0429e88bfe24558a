"""The campaign state machine: transitions, duplicates, reordering; no event loop."""

from __future__ import annotations

import pytest

from audian_async import CallRequest
from audian_async.dialer import RetryPolicy, idempotency_key
from audian_async.dialer._machine import CampaignReport, DialMachine, Item, ItemState, Step

FROM = "+14155552671"


def _campaign(max_attempts: int = 3) -> DialMachine:
    return DialMachine(
        "spring", RetryPolicy(max_attempts=max_attempts, base_delay=1.0, jitter=False)
    )


def test_tagged_request_keeps_user_tags_and_adds_campaign_metadata() -> None:
    campaign = _campaign()
    item = campaign.add(4, CallRequest(from_=FROM, to="+14155550100", tags={"agent": "a1"}))
    request, key = campaign.start_attempt(item)
    assert request.tags == {
        "agent": "a1",
        "audian_campaign": "spring",
        "audian_item": "4",
        "audian_attempt": "1",
    }
    assert key == idempotency_key("spring", 4, 1)
    assert item.request.tags == {"agent": "a1"}  # the original request is never changed


def test_idempotency_keys_are_deterministic_and_distinct() -> None:
    assert idempotency_key("a", 1, 1) == idempotency_key("a", 1, 1)
    keys = {idempotency_key(c, i, n) for c in ("a", "b") for i in (1, 2) for n in (1, 2)}
    assert len(keys) == 8
    assert all(len(k) <= 255 for k in keys)


def test_busy_then_completed_redials_once() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550106"))
    campaign.start_attempt(item)
    assert campaign.placed(item, "call_1", now=100.0) is None
    step = campaign.terminal("call_1", "failed", "busy", now=100.0)
    assert step is not None
    assert step.step is Step.REDIAL
    assert step.delay == 1.0
    assert item.state is ItemState.WAITING
    assert item.next_at == 101.0
    _, key = campaign.start_attempt(item)
    assert key == idempotency_key("spring", 0, 2)
    campaign.placed(item, "call_2", now=102.0)
    done = campaign.terminal("call_2", "completed", None, now=103.0)
    assert done is not None
    assert done.step is Step.DONE
    outcome = item.outcome()
    assert (outcome.status, outcome.reason, outcome.attempts) == ("completed", None, 2)
    assert outcome.call_ids == ("call_1", "call_2")


def test_duplicate_and_stale_events_change_nothing() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550101"))
    campaign.start_attempt(item)
    campaign.placed(item, "call_1", now=0.0)
    assert campaign.terminal("call_1", "failed", "busy", now=0.0) is not None
    assert campaign.terminal("call_1", "failed", "busy", now=0.0) is None  # duplicate
    campaign.start_attempt(item)
    campaign.placed(item, "call_2", now=0.0)
    assert campaign.terminal("call_1", "failed", "busy", now=0.0) is None  # stale call
    assert campaign.terminal("call_2", "answered", None, now=0.0) is None  # not terminal
    assert campaign.terminal("call_2", "completed", None, now=0.0) is not None
    assert campaign.terminal("call_2", "failed", "busy", now=0.0) is None  # reordered
    assert item.outcome().status == "completed"
    assert campaign.counts[ItemState.COMPLETED] == 1
    assert campaign.unfinished == 0


def test_event_that_overtakes_the_create_reply_is_applied_on_placement() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550103"))
    campaign.start_attempt(item)
    assert campaign.terminal("call_9", "failed", "declined", now=0.0) is None
    step = campaign.placed(item, "call_9", now=0.0)
    assert step is not None
    assert step.step is Step.DONE
    assert item.outcome().reason == "declined"


@pytest.mark.parametrize("reason", ["declined", "invalid_number"])
def test_final_reasons_fail_at_once(reason: str) -> None:
    campaign = _campaign(max_attempts=5)
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550103"))
    campaign.start_attempt(item)
    campaign.placed(item, "c", now=0.0)
    step = campaign.terminal("c", "failed", reason, now=0.0)
    assert step is not None
    assert step.step is Step.DONE
    assert item.outcome().attempts == 1


def test_max_attempts_caps_redials() -> None:
    campaign = _campaign(max_attempts=2)
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550101"))
    steps = []
    for n in (1, 2):
        campaign.start_attempt(item)
        campaign.placed(item, f"c{n}", now=0.0)
        step = campaign.terminal(f"c{n}", "failed", "busy", now=0.0)
        assert step is not None
        steps.append(step.step)
    assert steps == [Step.REDIAL, Step.DONE]
    assert item.outcome().status == "failed"
    assert item.outcome().attempts == 2


def test_rejected_create_is_not_an_attempt() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550104"))
    campaign.start_attempt(item)
    step = campaign.rejected(item, "invalid_number")
    assert step is not None
    assert item.outcome().attempts == 0
    assert item.outcome().reason == "invalid_number"


def test_replayed_placing_attempt_keeps_its_key_and_records_round_trip() -> None:
    campaign = _campaign()
    item = campaign.add(3, CallRequest(from_=FROM, to="+14155550100"))
    _, first = campaign.start_attempt(item)
    record = campaign.record(item)
    assert record.request is not None
    assert record.state == "placing"
    resumed = DialMachine("spring", campaign.policy)
    again = resumed.restore(record, item.request)
    _, second = resumed.start_attempt(again)
    assert second == first


def test_a_call_id_already_tracked_for_another_item_fails_the_attempt_loudly() -> None:
    campaign = _campaign()
    first = campaign.add(0, CallRequest(from_=FROM, to="+14155550100"))
    second = campaign.add(1, CallRequest(from_=FROM, to="+14155550101"))
    campaign.start_attempt(first)
    campaign.placed(first, "call_1", now=0.0)
    campaign.start_attempt(second)
    step = campaign.placed(second, "call_1", now=0.0)
    assert step is not None
    assert step.step is Step.DONE
    assert (second.state, second.reason, second.call_ids) == (
        ItemState.FAILED,
        "duplicate_call_id",
        [],
    )
    assert first.state is ItemState.LIVE  # the other item's call is untouched
    assert campaign.item_for("call_1") is first
    assert campaign.attempts == 1


def test_a_failure_without_a_reason_is_unknown_and_not_redialed() -> None:
    # A poll that finds the call failed learns no reason (GET carries none): a busy call
    # whose webhook was lost cannot be told from a declined one, so it is not redialed.
    campaign = _campaign(max_attempts=5)
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550101"))
    campaign.start_attempt(item)
    campaign.placed(item, "c", now=0.0)
    step = campaign.terminal("c", "failed", None, now=0.0)
    assert step is not None
    assert step.step is Step.DONE
    assert item.outcome().reason == "unknown"


def test_nonce_changes_the_keys_and_is_kept_on_resume() -> None:
    policy = RetryPolicy()
    plain = DialMachine("spring", policy)
    salted = DialMachine("spring", policy, nonce="ab12")
    request = CallRequest(from_=FROM, to="+14155550100")
    _, k1 = plain.start_attempt(plain.add(0, request))
    item = salted.add(0, request)
    _, k2 = salted.start_attempt(item)
    assert k1 != k2
    assert k2 == idempotency_key("spring", 0, 1, "ab12")
    resumed = DialMachine("spring", policy, nonce="ab12")
    _, k3 = resumed.start_attempt(resumed.restore(salted.record(item), request))
    assert k3 == k2


def test_finished_items_can_be_forgotten_and_still_count() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550100"))
    campaign.start_attempt(item)
    campaign.placed(item, "c", now=0.0)
    campaign.terminal("c", "completed", None, now=0.0)
    campaign.forget(item)
    assert campaign.items == {}
    assert campaign.item_for("c") is None
    assert (campaign.total, campaign.attempts, campaign.unfinished) == (1, 1, 0)
    assert campaign.counts[ItemState.COMPLETED] == 1
    assert campaign.terminal("c", "failed", "busy", now=0.0) is None  # late duplicate


def test_an_earlier_attempts_call_returned_for_a_new_attempt_fails_it() -> None:
    campaign = _campaign()
    item = campaign.add(0, CallRequest(from_=FROM, to="+14155550101"))
    campaign.start_attempt(item)
    campaign.placed(item, "call_1", now=0.0)
    assert campaign.terminal("call_1", "failed", "busy", now=0.0) is not None
    campaign.start_attempt(item)  # attempt 2, a new key: the API answers with call_1 again
    step = campaign.placed(item, "call_1", now=1.0)
    assert step is not None
    assert step.step is Step.DONE
    assert (item.state, item.reason, item.call_ids) == (
        ItemState.FAILED,
        "duplicate_call_id",
        ["call_1"],
    )
    assert campaign.attempts == 1


# --- the application's decisions -------------------------------------------------------


def _live(campaign: DialMachine, index: int = 0, call_id: str = "call_1") -> Item:
    item = campaign.add(index, CallRequest(from_=FROM, to=f"+1415555{index:04d}"))
    campaign.start_attempt(item)
    campaign.placed(item, call_id, now=10.0)
    return item


def test_a_redial_planned_during_the_call_overrules_the_policy_once() -> None:
    campaign = _campaign()
    item = _live(campaign)
    assert campaign.plan_redial("call_1", 60.0, now=20.0) == (True, None)
    assert campaign.plan_redial("call_1", 60.0, now=20.0) == (True, None)  # a duplicate
    step = campaign.terminal("call_1", "completed", None, now=30.0)
    assert step is not None
    assert (step.step, step.delay) == (Step.REDIAL, 60.0)
    assert (item.state, item.next_at, item.reason) == (ItemState.WAITING, 90.0, None)
    # Waiting, then placing: the redial after call_1 is already there, nothing more.
    assert campaign.plan_redial("call_1", 0.0, now=31.0) == (True, None)
    campaign.start_attempt(item)
    assert campaign.plan_redial("call_1", 0.0, now=31.0) == (True, None)
    campaign.placed(item, "call_2", now=40.0)
    assert campaign.plan_redial("call_1", 0.0, now=41.0) == (False, None)  # not the latest
    assert campaign.terminal("call_2", "completed", None, now=50.0).step is Step.DONE  # type: ignore[union-attr]
    assert campaign.counts[ItemState.COMPLETED] == 1


def test_a_planned_redial_uses_the_policy_backoff_and_max_attempts() -> None:
    campaign = _campaign(max_attempts=2)
    item = _live(campaign)
    assert campaign.plan_redial("call_1", None, now=20.0) == (True, None)
    step = campaign.terminal("call_1", "failed", "declined", now=30.0)  # never redialed...
    assert step is not None
    assert (step.step, step.delay) == (Step.REDIAL, 1.0)
    campaign.start_attempt(item)
    campaign.placed(item, "call_2", now=40.0)
    assert campaign.plan_redial("call_2", None, now=41.0) == (False, None)  # 2 of 2 attempts


def test_a_finished_item_is_reopened_by_a_redial_after_its_latest_call() -> None:
    campaign = _campaign()
    item = _live(campaign)
    campaign.terminal("call_1", "completed", None, now=30.0)
    assert campaign.unfinished == 0
    scheduled, step = campaign.plan_redial("call_1", 5.0, now=31.0)
    assert scheduled
    assert step is not None
    assert (step.step, step.delay) == (Step.REDIAL, 5.0)
    assert (item.state, item.next_at, campaign.unfinished) == (ItemState.WAITING, 36.0, 1)
    assert campaign.plan_redial("call_unknown", 5.0, now=31.0) == (False, None)


def test_finish_ends_a_waiting_item_now_and_a_live_one_with_its_call() -> None:
    campaign = _campaign()
    waiting = _live(campaign, 0, "call_a")
    campaign.terminal("call_a", "failed", "busy", now=20.0)
    assert waiting.state is ItemState.WAITING
    step = campaign.finish("call_a")
    assert step is not None
    assert step.step is Step.DONE
    assert (waiting.state, waiting.reason, waiting.next_at) == (ItemState.FAILED, "busy", None)
    assert campaign.finish("call_a") is None  # idempotent
    live = _live(campaign, 1, "call_b")
    assert campaign.finish("call_b") is None  # takes effect when the call ends...
    assert campaign.plan_redial("call_b", 0.0, now=21.0) == (False, None)  # ...and wins
    step = campaign.terminal("call_b", "failed", "busy", now=30.0)
    assert step is not None
    assert step.step is Step.DONE
    assert (live.state, live.reason) == (ItemState.FAILED, "busy")


def test_a_completed_call_redialed_then_finished_stays_completed() -> None:
    campaign = _campaign()
    item = _live(campaign)
    campaign.terminal("call_1", "completed", None, now=30.0)
    campaign.plan_redial("call_1", 5.0, now=31.0)
    assert campaign.finish("call_1") is not None
    assert item.state is ItemState.COMPLETED


def test_suppress_fails_pending_and_waiting_items_but_not_a_live_call() -> None:
    campaign = _campaign()
    pending = campaign.add(0, CallRequest(from_=FROM, to="+14155550100"))
    step = campaign.suppress(pending)
    assert step is not None
    assert (pending.state, pending.reason) == (ItemState.FAILED, "suppressed")
    live = _live(campaign, 1)
    assert campaign.suppress(live) is None
    campaign.terminal("call_1", "completed", None, now=30.0)
    assert campaign.plan_redial("call_1", 0.0, now=31.0)[0]  # a completed item reopens...
    assert campaign.suppress(live) is not None
    assert campaign.plan_redial("call_1", 0.0, now=32.0) == (False, None)  # ...not a suppressed one


def test_outcomes_of_unfinished_items_are_pending_with_their_next_due_time() -> None:
    campaign = _campaign()
    item = _live(campaign)
    campaign.terminal("call_1", "failed", "busy", now=1_800_000_000.0)
    held = campaign.add(1, CallRequest(from_=FROM, to="+14155550100"))
    assert campaign.hold(held, 1_800_000_500.0)
    waiting, pending = campaign.outcomes([0, 1])
    assert (waiting.status, waiting.reason, waiting.attempts) == ("pending", "busy", 1)
    assert waiting.next_at is not None
    assert waiting.next_at.timestamp() == 1_800_000_001.0
    assert pending.status == "pending"
    assert pending.next_at is not None
    assert pending.next_at.timestamp() == 1_800_000_500.0
    assert campaign.hold(item, 1_800_000_900.0)  # a waiting item held for its window
    assert item.outcome().next_at is not None
    assert item.outcome().next_at.timestamp() == 1_800_000_900.0
    done = _live(campaign, 2, "call_done")
    campaign.terminal("call_done", "completed", None, now=1.0)
    assert not campaign.hold(done, 5.0)
    report = CampaignReport.build("spring", [waiting, pending])
    assert (report.pending, report.failed, report.completed) == (2, 0, 0)
