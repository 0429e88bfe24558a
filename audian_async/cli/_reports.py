"""``--report PATH``: the campaign's report written as a page or as JSON, by the file's suffix."""

from __future__ import annotations

import os
from pathlib import Path

from ..dialer import CampaignReport

__all__ = ["REPORT_SUFFIXES", "write_report"]

REPORT_SUFFIXES = (".html", ".htm", ".json")
"""The files :func:`write_report` writes: a page (``.html``/``.htm``) or the data as JSON."""


def write_report(report: CampaignReport, path: str | os.PathLike[str]) -> Path:
    """Write ``report`` to ``path`` as HTML or JSON, by its suffix; returns its absolute
    path (to show the user). Any
    other suffix is a :class:`ValueError`, raised before anything is written."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in REPORT_SUFFIXES:
        raise ValueError(f"{target}: a report is .html, .htm or .json, not {suffix or 'none'!r}")
    if suffix == ".json":
        report.to_json(target)
    else:
        report.to_html(target)
    return target.resolve()
