"""Which items one process holds in a campaign shared over Redis: the bookkeeping behind
the coordinator's lease renewals (pure: no I/O, no clock of its own).

A process holds the items it claimed (or took over) until their call ends, a renewal says
another process has them now, or it puts them back. A renewal's answer can cross a new
claim of the same item by the same process (a redial of an item whose end another process
applied: the renewal saw it released, the claim took it again), so each claim is numbered,
and a renewal's "lost" counts only for items not claimed again since it was sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Set

__all__ = ["HeldItems"]


class HeldItems:
    """The indices this process holds, each with the number of its last claim."""

    __slots__ = ("_claims", "_held", "renewed_at")

    def __init__(self) -> None:
        self._held: dict[int, int] = {}  # index -> claim number (0: taken over)
        self._claims = 0
        self.renewed_at = 0.0
        """When the last renewal that succeeded was sent (the caller's clock)."""

    def __contains__(self, index: object) -> bool:
        return index in self._held

    def __len__(self) -> int:
        return len(self._held)

    @property
    def indices(self) -> Set[int]:
        """The held indices (a live view)."""
        return self._held.keys()

    def claimed(self, index: int) -> None:
        """This process claimed item ``index`` (again)."""
        self._claims += 1
        self._held[index] = self._claims

    def taken_over(self, index: int) -> None:
        """This process took item ``index`` over from one that stopped."""
        self._held[index] = 0

    def let_go(self, index: int) -> None:
        """This process no longer holds item ``index``."""
        self._held.pop(index, None)

    def mark(self) -> int:
        """Taken as a renewal is sent: handed to :meth:`lost` with its answer."""
        return self._claims

    def lost(self, mark: int, indices: Iterable[int]) -> list[int]:
        """The renewal of ``mark`` found ``indices`` no longer this process's: let go of
        those not claimed again since, and return them."""
        gone = [i for i in indices if self._held.get(i, 0) <= mark]
        for index in gone:
            self._held.pop(index, None)
        return gone
