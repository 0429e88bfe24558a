"""Numbers a dialer must never call (opted out, on a do-not-call list): pure, no I/O.

Numbers are compared in E.164. A list of 100,000 numbers must load in a blink and cost
nothing per call, so entries already written in E.164 (``+`` and 7 to 15 digits) are taken as
they are: one that is not a real number can match no validated request anyway. Anything else
(``(415) 555-0123`` with a region, spaces, dashes) is normalised with phonenumbers, and an
entry that is no phone number at all is a :class:`~audian_async.ValidationError` naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeAlias

from .._errors import ValidationError
from .._validation import normalize_number

__all__ = ["SuppressOption", "Suppression"]

SuppressOption: TypeAlias = "Iterable[str] | str | os.PathLike[str] | None"
"""What ``Dialer(suppress=...)`` takes: numbers, or the path of a file of them."""

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _normalized(value: object, field: str, region: str | None) -> str:
    if isinstance(value, str) and _E164.fullmatch(value):
        return value
    return normalize_number(value, field, region)


def _read_file(path: Path, region: str | None) -> Iterator[str]:
    """Numbers of a file: one per line (or the first column of a CSV), ``#`` comments and
    blank lines ignored."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError("suppress", f"cannot read {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.split("#", 1)[0].split(",", 1)[0].strip().strip('"')
        if entry and not (number == 1 and not any(c.isdigit() for c in entry)):  # a header
            yield _normalized(entry, f"suppress ({path} line {number})", region)


class Suppression:
    """The numbers never to call, E.164, with fast membership tests.

    >>> s = Suppression.from_option({"+14155550123"})
    >>> "+14155550123" in s
    True
    """

    __slots__ = ("_numbers",)

    def __init__(self, numbers: Iterable[str] = ()) -> None:
        self._numbers = set(numbers)

    @classmethod
    def from_option(cls, value: SuppressOption, region: str | None = None) -> Suppression:
        """Build from ``Dialer(suppress=...)``: None, numbers, or a file path (one number per
        line, or a CSV whose first column holds them). Errors name the entry."""
        if value is None:
            return cls()
        if isinstance(value, str | os.PathLike):
            return cls(_read_file(Path(value), region))
        if not isinstance(value, Iterable):
            raise ValidationError(
                "suppress", f"must be numbers or a file path, got {type(value).__name__}"
            )
        return cls(_normalized(v, f"suppress[{i}]", region) for i, v in enumerate(value))

    def __contains__(self, number: object) -> bool:
        return number in self._numbers

    def __len__(self) -> int:
        return len(self._numbers)

    def __repr__(self) -> str:
        return f"<Suppression of {len(self._numbers)} number(s)>"

    def add(self, number: str) -> bool:
        """Add an E.164 ``number``; returns whether it was new."""
        if number in self._numbers:
            return False
        self._numbers.add(number)
        return True

    def update(self, numbers: Iterable[str]) -> None:
        """Add E.164 ``numbers``."""
        self._numbers.update(numbers)

    def copy(self) -> Suppression:
        """An independent copy (each run adds to its own)."""
        return Suppression(self._numbers)

    @staticmethod
    def normalize(number: object, region: str | None = None, field: str = "number") -> str:
        """``number`` in E.164, or a :class:`~audian_async.ValidationError` for ``field``."""
        return _normalized(number, field, region)
