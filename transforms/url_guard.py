"""URL checks shared by every parser of page, list and seed URLs (no Beam import).

Input: URL text from pages (``<img src>``, srcset, ``<a href>``, ``<base href>``), URL-list
rows and seeds lines. Output: ``url_problem`` — "" for an absolute http(s) URL worth a
request, else why not (short text for a rejection's detail) — and ``join``, a ``urljoin``
that never raises. Nothing is dropped here: callers turn a problem into ``extract.bad_url``
(images, list rows), a skipped link (crawl) or a logged, skipped seed.

Why: ``urlsplit``/``urljoin`` raise ``ValueError`` on a bad IPv6 literal (``http://[::1``,
``http://[oops/``, ``//[x]``) and ``.port`` raises on ``:abc`` or ``:99999``; one such URL
on a page or in a row must cost that URL, not the run.

Length: a URL over ``MAX_URL_CHARS`` (2,048) is refused with its length in the detail, never
cut (a cut URL names another resource, or none). 2,048 is the sitemaps.org protocol's limit
and about what browsers, CDNs and servers reliably carry (Internet Explorer's 2,083; many
servers' 4-8 KiB request-line buffers); image URLs longer than that are almost always state
stuffed into a query string, and the limit keeps every URL column of the outputs bounded.
``extract.max_url_chars`` changes it for extraction (configs/base.yaml).
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import urljoin, urlsplit

MAX_URL_CHARS = 2048
_DETAIL_CHARS = 120
_SURROGATE = re.compile("[\ud800-\udfff]")  # from JSON escapes or undecodable bytes: cannot be sent
# URLs that certainly parse (lower-case http(s) scheme, a plain host, a port below 10000, no
# whitespace, control character or bracket): most list rows, checked without urlsplit's ~3 us.
_PLAIN = re.compile(r"https?://[A-Za-z0-9.\-]+(?::[0-9]{1,4})?(?:[/?#][\x21-\x5a\x5c\x5e-\x7e]*)?")


def join(base: str, ref: str) -> str:
    """``urljoin(base, ref)``, or "" when either does not parse (a bad IPv6 literal)."""
    try:
        return urljoin(base, ref)
    except ValueError:
        return ""


def parses(url: str) -> bool:
    """urlsplit accepts the URL and its port (a base other URLs may be joined to)."""
    try:
        urlsplit(url).port
    except ValueError:
        return False
    return True


def too_long(url: str, max_chars: Optional[int]) -> bool:
    """Over the limit (None: no limit): refused, never cut."""
    return max_chars is not None and len(url) > max_chars


def url_problem(url: str, max_chars: Optional[int] = MAX_URL_CHARS) -> str:
    """"" for an absolute http(s) URL with a host and a valid port, no longer than ``max_chars``
    (None: any length); else what is wrong with it."""
    if too_long(url, max_chars):
        return f"URL of {len(url)} characters, over the {max_chars} limit (not cut)"
    if _PLAIN.fullmatch(url):
        return ""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises on a port that is not a number in 0-65535
    except ValueError as exc:
        return f"unparseable URL: {exc}"[:_DETAIL_CHARS]
    if parts.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not url.isascii() and _SURROGATE.search(url):
        return "not valid Unicode (a lone surrogate)"
    if not parts.hostname:
        return "no host"
    return ""
