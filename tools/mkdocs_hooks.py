"""mkdocs hooks: render the docstrings' Sphinx idioms the way Sphinx would.

The docstrings are written for ``help()`` and IDEs in reStructuredText habits: roles such as
``:class:`~audian_async.Dialer``` and a paragraph ending in ``::`` before a literal block.
mkdocstrings renders them as Markdown, where both would show literally, so the built page is
touched up here instead of rewriting every docstring.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|mod|data|attr|exc|obj):<code>(~?)([^<]*)</code>")
_LITERAL_MARKER = re.compile(r"::</p>")


def _role(match: re.Match[str]) -> str:
    short, target = match.groups()
    # Sphinx's ``~`` shows only the last component of the dotted name.
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Drop role prefixes and turn a paragraph's closing ``::`` into one colon."""
    return _LITERAL_MARKER.sub(":</p>", _ROLE.sub(_role, html))
