"""The bookkeeping of the items one process holds (pure: no Redis needed)."""

from __future__ import annotations

from audian_async.dialer._redis_leases import HeldItems


def test_a_renewal_answer_counts_only_for_items_not_claimed_again_since() -> None:
    held = HeldItems()
    held.claimed(1)
    held.claimed(2)
    held.taken_over(3)
    mark = held.mark()  # a renewal of 1, 2 and 3 is sent
    held.claimed(2)  # 2 is claimed again while it is on its way
    assert held.lost(mark, [2, 3]) == [3]  # 2's fresh claim stands
    assert sorted(held.indices) == [1, 2]
    held.let_go(1)
    assert 1 not in held
    assert len(held) == 1
    assert held.lost(held.mark(), [2, 9]) == [2, 9]  # 9 was never held: nothing to undo
    assert len(held) == 0
