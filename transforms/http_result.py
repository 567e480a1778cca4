"""What one HTTP request gives: failure kinds, ``FetchResult``, transport errors classified,
and URL pieces that fail as ``BAD_URL`` instead of raising (no Beam import).

Input: requests/urllib3 exceptions and URLs (from pages, lists, ``Location`` headers).
Output: values for transforms/http_client.py: a failure kind (``TIMEOUT``, ``DNS``, ``TLS``,
``HTTP_4XX``, ...; each stage maps them to its own ``DropReason``), a ``FetchResult``, or a
``_Failure`` raised inside the client and turned into a result there. Nothing is dropped here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import urljoin, urlsplit

import requests

# Failure kinds; stages map them to their own DropReason (crawl.* or fetch.*).
TIMEOUT, CONNECT, DNS, TLS, HTTP_4XX, HTTP_5XX = "timeout", "connect", "dns", "tls", "http_4xx", "http_5xx"
TOO_LARGE, ROBOTS, NOAI, PRIVATE = "too_large", "robots_disallowed", "noai", "private_address"
REDIRECT_LOOP, TOO_MANY_REDIRECTS = "redirect_loop", "too_many_redirects"
BAD_URL, BAD_RESPONSE, INCOMPLETE, ERROR = "bad_url", "bad_response", "incomplete_body", "error"
# robots.txt 5xx/unreachable (RFC 9309: complete disallow); Crawl-delay or Retry-After
# above max_host_delay_s; a TDMRep reservation (header or tdmrep.json).
ROBOTS_UNAVAILABLE, HOST_TOO_SLOW, TDM_RESERVED = "robots_unavailable", "host_too_slow", "tdm_reserved"
REFUSED_TYPE = "refused_type"  # a Content-Type in ClientSettings.refuse_types: the body is not read

@dataclass(frozen=True)
class FetchResult:
    ok: bool
    url: str
    final_url: str = ""
    status: int = 0
    content_type: str = ""  # the full header, charset included
    data: bytes = b""
    failure: str = ""  # one of the failure kinds above when not ok
    detail: str = ""

    @property
    def mime(self) -> str:
        return self.content_type.split(";")[0].strip().lower()


class _Failure(Exception):
    def __init__(self, kind: str, detail: str = "", status: int = 0, retry_after: Optional[float] = None,
                 final: bool = False):
        super().__init__(detail)
        self.kind, self.detail, self.status, self.retry_after = kind, detail, status, retry_after
        self.final = final  # not worth a retry (a server that blew the total deadline)


def classify_exception(exc: requests.RequestException) -> tuple[str, str]:
    """(failure kind, detail) for a requests exception."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, requests.exceptions.SSLError):
        return TLS, text
    if isinstance(exc, (requests.exceptions.ConnectTimeout, requests.exceptions.ReadTimeout)):
        return TIMEOUT, text
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                        requests.exceptions.InvalidSchema)):
        return BAD_URL, text
    if isinstance(exc, requests.exceptions.InvalidHeader):  # e.g. Content-Length "100, 200": framing unknown
        return BAD_RESPONSE, text
    lowered = text.lower()
    if "nameresolution" in lowered or "name or service not known" in lowered or "getaddrinfo" in lowered:
        return DNS, text
    if isinstance(exc, requests.exceptions.ChunkedEncodingError) or "incompleteread" in lowered:
        return INCOMPLETE, text
    if "line too long" in lowered or "got more than" in lowered or "badstatusline" in lowered:
        return BAD_RESPONSE, text
    if "timed out" in lowered:
        return TIMEOUT, text
    return CONNECT, text


def _join_location(current: str, location: str) -> str:
    """A redirect's target; BAD_URL for one that does not parse (``http://[::1``, a bad port)."""
    try:
        nxt = urljoin(current, location)
    except ValueError:
        raise _Failure(BAD_URL, f"unparseable Location {location[:200]!r}") from None
    _split(nxt)
    return nxt


def _split(url: str):
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 — raises ValueError on a bad port
        return parts
    except ValueError:
        raise _Failure(BAD_URL, f"unparseable url {url[:200]!r}") from None


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL (no userinfo: site files are fetched anonymously)."""
    parts = _split(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


def _host_key(url: str) -> str:
    """host[:port], the unit of per-host spacing and slow-host marks."""
    return _split(url).netloc.rpartition("@")[2].lower()


def _path(url: str) -> str:
    return _split(url).path or "/"
