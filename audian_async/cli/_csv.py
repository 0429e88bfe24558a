"""Read a campaign's numbers from CSV: pure, and strict before anything is dialed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

import attrs

from .._errors import AudianError, ValidationError
from .._models import CallControl, CallRequest, PlayAudio
from .._validation import normalize_number, validate_call_request

__all__ = ["CsvError", "RowError", "read_requests"]

_NUMBER_COLUMNS = ("to", "number", "phone", "phone_number")
MAX_ROWS = 1_000_000
MAX_ERRORS_SHOWN = 50

_CLI_HINT = "pass --region (e.g. --region US) to accept national numbers"


@attrs.frozen
class RowError:
    """One bad row: its line number in the file and what is wrong."""

    line: int
    message: str


class CsvError(AudianError):
    """The CSV has bad rows; ``errors`` lists each (nothing was dialed)."""

    def __init__(self, path: str, errors: list[RowError]) -> None:
        self.path = path
        self.errors = errors
        shown = "\n".join(f"  line {e.line}: {e.message}" for e in errors[:MAX_ERRORS_SHOWN])
        more = len(errors) - MAX_ERRORS_SHOWN
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{path}: {len(errors)} bad row(s), nothing was dialed:\n{shown}{tail}")


def read_requests(
    text: str,
    *,
    from_: str,
    message: str | None = None,
    audio_url: str | None = None,
    default_region: str | None = None,
    path: str = "<csv>",
) -> list[CallRequest]:
    """Turn CSV text into validated requests, or raise :class:`CsvError` listing bad rows.

    With a header row, the number is in a ``to``/``number``/``phone`` column, a ``from``
    column overrides ``from_``, ``message``/``audio_url`` columns override the defaults and
    any other column goes to the call's ``custom_fields``. Without a header, the first column
    is the number. Blank lines and lines starting with ``#`` are skipped.
    """
    caller = normalize_number(from_, "from", default_region)
    rows = list(_rows(text))
    if not rows:
        raise CsvError(path, [RowError(1, "the file has no numbers")])
    if len(rows) > MAX_ROWS:
        raise CsvError(path, [RowError(rows[MAX_ROWS][0], f"more than {MAX_ROWS} rows")])
    header = [c.strip().lower() for c in rows[0][1]]
    number_col = next((header.index(c) for c in _NUMBER_COLUMNS if c in header), None)
    if number_col is None:
        columns: list[str] = []
        body = rows
    else:
        columns = header
        body = rows[1:]
        if not body:
            raise CsvError(path, [RowError(rows[0][0], "a header but no numbers")])
    requests: list[CallRequest] = []
    errors: list[RowError] = []
    for line, cells in body:
        try:
            requests.append(
                _request(
                    cells, columns, number_col or 0, caller, message, audio_url, default_region
                )
            )
        except ValidationError as exc:
            if exc.hint is not None:
                # The SDK's advice names its option; on the command line it is --region.
                exc = ValidationError(exc.field, exc.without_hint().message, hint=_CLI_HINT)
            errors.append(RowError(line, str(exc)))
    if errors:
        raise CsvError(path, errors)
    return requests


def _rows(text: str) -> Iterable[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    for cells in reader:
        if not cells or not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
            continue
        yield reader.line_num, cells


def _request(
    cells: list[str],
    columns: list[str],
    number_col: int,
    caller: str,
    message: str | None,
    audio_url: str | None,
    region: str | None,
) -> CallRequest:
    if columns and len(cells) > len(columns):
        raise ValidationError("", f"{len(cells)} cells but the header has {len(columns)}")
    values = dict(zip(columns, (c.strip() for c in cells), strict=False)) if columns else {}
    raw = cells[number_col].strip() if number_col < len(cells) else ""
    to = normalize_number(raw, "to", region)
    from_ = values.pop("from", "") or caller
    text = values.pop("message", "") or message
    url = values.pop("audio_url", "") or audio_url
    for name in _NUMBER_COLUMNS:
        values.pop(name, None)
    custom = {k: v for k, v in values.items() if k and v}
    control = None
    if text or url:
        control = CallControl(on_answered=[PlayAudio(message=text or None, audio_url=url or None)])
    request = CallRequest(from_=from_, to=to, call_control=control, custom_fields=custom or None)
    return validate_call_request(request, region).request
