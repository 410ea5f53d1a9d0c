"""Turning exceptions and messages into the one line a user sees."""

from __future__ import annotations


def one_line(exc: BaseException | str, limit: int = 300) -> str:
    """The message of `exc` folded onto one line and cut at `limit` characters (the type name when empty)."""
    raw = exc if isinstance(exc, str) else (str(exc) or type(exc).__name__)
    text = " ".join(raw.split())
    return text if len(text) <= limit else text[:limit] + "..."
