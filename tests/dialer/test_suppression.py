"""Suppression lists: pure, no event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from audian_async import ValidationError
from audian_async.dialer._suppression import Suppression


def test_numbers_are_kept_in_e164() -> None:
    s = Suppression.from_option(["+14155550123", "+1 (415) 555-0124", "(415) 555-0125"], "US")
    assert {"+14155550123", "+14155550124", "+14155550125"} <= set(s._numbers)
    assert "+14155550124" in s
    assert "+14155550199" not in s
    assert len(s) == 3
    assert s.add("+14155550199")
    assert not s.add("+14155550199")
    copy = s.copy()
    copy.add("+14155550100")
    assert "+14155550100" not in s


def test_a_file_of_numbers_skips_a_header_comments_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "dnc.csv"
    path.write_text('number,since\n"+14155550123",2026-01-01\n\n# opted out\n+44 20 7946 0958\n')
    assert set(Suppression.from_option(path)._numbers) == {"+14155550123", "+442079460958"}
    assert len(Suppression.from_option(str(path))) == 2


def test_bad_entries_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"suppress\[1\]"):
        Suppression.from_option(["+14155550123", "not a number"])
    with pytest.raises(ValidationError, match=r"suppress\[0\]"):
        Suppression.from_option([12])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="must be numbers or a file path"):
        Suppression.from_option(42)  # type: ignore[arg-type]
    bad = tmp_path / "list.txt"
    bad.write_text("+14155550123\nnope-123\n")
    with pytest.raises(ValidationError, match=r"line 2"):
        Suppression.from_option(bad)
    with pytest.raises(ValidationError, match="cannot read"):
        Suppression.from_option(tmp_path / "missing.txt")


def test_none_is_empty() -> None:
    assert len(Suppression.from_option(None)) == 0
