"""Outside text (URL values, file names, a run file's attributes) made safe for Markdown panes and HTML.

Panel's Markdown and Alert panes render HTML, Markdown syntax and bare URLs (``cnn-normal.nc`` is a
link: ``.nc`` is a country's domain). A value from outside the app is data: :func:`literal` turns it
into text that every one of those renders character for character, so it can sit inside a trusted
Markdown template, or a trusted HTML one (the digit inspector's title, :mod:`dashboard.digits`).
"""

from __future__ import annotations

import re

__all__ = ["literal"]

_MARKUP = re.compile(r"[^A-Za-z0-9 ]")


def literal(value: object) -> str:
    """``str(value)`` with every character but ASCII letters, digits and spaces written as a numeric
    character reference (``<`` -> ``&#60;``).

    CommonMark never reads a character reference as syntax, and the link finder only looks at runs of
    plain text, which the references break at every ``.``, ``:`` and ``/``; the page shows the original
    characters. Not for code spans or fenced blocks, where references stay as typed.
    """
    return _MARKUP.sub(lambda match: f"&#{ord(match.group())};", str(value))
