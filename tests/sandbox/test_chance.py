"""The sandbox's source of chance: seeded choices are functions of what they decide."""

from __future__ import annotations

import uuid

import pytest

from audian_async.sandbox import Faults
from audian_async.sandbox._chance import Chance


def test_a_seeded_choice_depends_only_on_seed_knob_and_identity() -> None:
    first, again = Chance(seed=7), Chance(seed=7)
    things = [("webhook.drop", "evt_1", 0), ("webhook.drop", "evt_2", 0), ("call", 3)]
    # Asked in opposite orders, as two workers racing would: the same answers.
    forward = {thing: first.draw(*thing) for thing in things}
    backward = {thing: again.draw(*thing) for thing in reversed(things)}
    assert forward == backward
    assert len(set(forward.values())) == len(things)
    assert first.token(8, "call", 1) == again.token(8, "call", 1)
    assert first.uuid("call_uuid", 1) == again.uuid("call_uuid", 1)


def test_every_part_of_the_identity_matters() -> None:
    base = Chance(seed=7).token(8, "event", "call_a", 0)
    assert Chance(seed=8).token(8, "event", "call_a", 0) != base
    assert Chance(seed=7).token(8, "recording", "call_a", 0) != base
    assert Chance(seed=7).token(8, "event", "call_b", 0) != base
    assert Chance(seed=7).token(8, "event", "call_a", 1) != base
    # Parts are typed and delimited: neither 1 and "1" nor ("ab", "c") and ("a", "bc") meet.
    assert Chance(seed=7).token(8, "x", 1) != Chance(seed=7).token(8, "x", "1")
    assert Chance(seed=7).token(8, "x", "ab", "c") != Chance(seed=7).token(8, "x", "a", "bc")


def test_ids_have_their_shapes() -> None:
    for chance in (Chance(seed=1), Chance()):
        token = chance.token(8, "call", 1)
        assert len(token) == 16
        int(token, 16)
        parsed = uuid.UUID(chance.uuid("call_uuid", 1))
        assert parsed.version == 4


def test_unseeded_choices_are_random() -> None:
    chance = Chance()
    assert len({chance.token(8, "call", 1) for _ in range(50)}) == 50
    assert len({chance.draw("webhook.drop", "evt_1") for _ in range(50)}) == 50


@pytest.mark.parametrize("seed", [None, 3])
def test_rates_zero_and_one_are_never_and_always(seed: int | None) -> None:
    chance = Chance(seed)
    assert not any(chance.decide(0.0, "knob", n) for n in range(200))
    assert all(chance.decide(1.0, "knob", n) for n in range(200))


def test_a_seeded_rate_is_the_fraction_decided() -> None:
    chance = Chance(seed=11)
    hits = sum(chance.decide(0.3, "webhook.duplicate", f"evt_{n}", 0) for n in range(10_000))
    assert 2_800 < hits < 3_200  # a fixed outcome for this seed: it cannot flake
    for n in range(1_000):
        draw = chance.draw("knob", n)
        assert 0.0 <= draw < 1.0


def test_seeded_faults_are_a_function_of_route_and_request_number() -> None:
    rates = {"POST /v2/calls": 0.5, "*": 0.5}
    own = Faults(error_rate=rates, no_reply_rate=rates, seed=5)
    route = "POST /v2/calls"
    errors = [own.error_for(route, n) for n in range(1, 41)]
    assert errors == [own.error_for(route, n) for n in range(1, 41)]
    assert set(errors) == {True, False}
    # The two knobs and the routes draw independently of each other.
    assert errors != [own.no_reply_for(route, n) for n in range(1, 41)]
    assert errors != [own.error_for("GET /v2/calls/{id}", n) for n in range(1, 41)]
    # The sandbox's seed stands in only when the Faults has none of its own.
    assert errors == [own.error_for(route, n, seed=99) for n in range(1, 41)]
    borrowed = Faults(error_rate=rates)
    assert errors == [borrowed.error_for(route, n, seed=5) for n in range(1, 41)]
