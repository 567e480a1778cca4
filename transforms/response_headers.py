"""Values of response headers from remote servers, read without trusting them (no Beam import).

Input: header values as sent (``str``, or the list of a repeated header's values).
Output: what they say to the client — the ``X-Robots-Tag`` directive that applies
to our product token, seconds from ``Retry-After``, an int from ``Content-Length``
— or None. Numbers are read with ASCII-only patterns (``str.isdigit()`` takes "²",
``int()`` takes "١٢٣"); nothing here raises on any text.
"""

from __future__ import annotations

import email.utils
import re
import time
from typing import Iterable, Optional, Union

NOAI_DIRECTIVES = frozenset({"noai", "noimageai"})
# X-Robots-Tag directives that take a value after ":" (Google's syntax); any other
# "name:" starts a group of directives for the crawler of that name.
_VALUE_DIRECTIVES = frozenset({"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"})
_BOT_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_DEFAULT_AGENT = "wit-curator"  # product token of ClientSettings.user_agent's default
_MAX_DELAY_S = 1e9  # a Retry-After of more digits is read as this (finite arithmetic)


def noai_directive(header_value: Union[str, Iterable[str]], agent: str = _DEFAULT_AGENT) -> Optional[str]:
    """The first noai-style directive in ``X-Robots-Tag`` that applies to ``agent``, if any.

    Google's syntax: comma-separated directives; ``name: ...`` (``name`` not a
    directive taking a value, like ``max-snippet:``) starts a group for crawler
    ``name``, running to the next such prefix or the end of the header. Unscoped
    ``noai`` / ``noimageai`` apply to everyone; ``otherbot: noai`` only to otherbot;
    ``wit-curator: noai`` (our token, any case) to us. Pass the header's values as a
    list where they are known apart: a group does not reach into the next header.
    """
    values = [header_value] if isinstance(header_value, str) else list(header_value)
    agent = (agent or "").lower()
    for value in values:
        scope = None  # None: every crawler
        for raw in re.split(r"[,;]", value or ""):
            part = raw.strip()
            name, sep, rest = part.partition(":")
            name = name.strip().lower()
            if sep and name not in _VALUE_DIRECTIVES and _BOT_NAME.fullmatch(name):
                scope, part = name, rest.strip()
            token = part.lower()
            if token in NOAI_DIRECTIVES and scope in (None, agent):
                return token
    return None


def parse_retry_after(value: str) -> Optional[float]:
    """Seconds to wait from a Retry-After header: delta-seconds (ASCII ``[0-9]+``) or an
    HTTP date; None for anything else ("²", "-1", "soon", a date out of range)."""
    value = (value or "").strip()
    if not value or not value.isascii():
        return None
    if re.fullmatch(r"[0-9]+", value):
        return float(value) if len(value) <= 9 else _MAX_DELAY_S
    try:
        when = email.utils.parsedate_to_datetime(value)
        seconds = when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError):
        return None
    return min(_MAX_DELAY_S, max(0.0, seconds))


def declared_length(value: str) -> Optional[int]:
    """Content-Length as an int, or None when absent or not a number we trust.

    ASCII digits only (``int()`` takes "١٢٣", ``isdigit()`` takes "²"); repeated
    identical values ("100, 100", RFC 9110 §8.6) are one. Anything else reads as
    undeclared: the body is still counted against the cap as it streams, so a bad
    header can neither crash the fetch nor lift the cap. A number of more than 18
    digits is over any cap; it reads as 10**18 (no huge int from remote text).
    """
    items = {item.strip() for item in (value or "").split(",")} - {""}
    if len(items) != 1:
        return None
    item = items.pop()
    if not re.fullmatch(r"[0-9]+", item):
        return None
    return int(item) if len(item) <= 18 else 10 ** 18


def header_values(resp, name: str) -> list[str]:
    """Each value of a header as sent (urllib3 keeps repeated headers apart; requests joins them)."""
    raw = getattr(getattr(resp, "raw", None), "headers", None)
    if raw is not None and hasattr(raw, "getlist"):
        return [str(v) for v in raw.getlist(name)]
    joined = resp.headers.get(name)
    return [joined] if joined else []
