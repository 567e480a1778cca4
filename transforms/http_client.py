"""Polite, guarded HTTP client shared by page and image fetches (no Beam import).

Input: URLs. Output: ``FetchResult`` — bytes, final URL and MIME type, or a
``DropReason`` (without the stage prefix decided here: callers map the kind to a
crawl or fetch reason) and a detail string.

What it does for every request, on every redirect hop:
- SSRF guard: the host is resolved and loopback, private, link-local, multicast
  and reserved addresses are refused unless ``allow_private_networks``.
- robots.txt, fetched once per host and cached (``urllib.robotparser``).
- ``X-Robots-Tag: noai`` / ``noimageai`` checked from the headers, before the body.
- Connect/read timeouts plus a total deadline; the body is streamed under a
  byte cap (Content-Length checked first, then counted).
Retries with backoff on connection errors, 429 and 5xx (honouring Retry-After).

Created in ``DoFn.setup()``: it holds a pooled ``requests.Session`` and caches.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import socket
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

log = logging.getLogger(__name__)

# Failure kinds; stages map them to their own DropReason (crawl.* or fetch.*).
TIMEOUT, CONNECT, DNS, HTTP_4XX, HTTP_5XX = "timeout", "connect", "dns", "http_4xx", "http_5xx"
TOO_LARGE, ROBOTS, NOAI, PRIVATE = "too_large", "robots_disallowed", "noai", "private_address"
REDIRECT_LOOP, BAD_URL, ERROR = "redirect_loop", "bad_url", "error"

NOAI_DIRECTIVES = frozenset({"noai", "noimageai"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 30.0


@dataclass(frozen=True)
class ClientSettings:
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    max_bytes: int = 20_000_000
    max_redirects: int = 5
    retries: int = 1
    user_agent: str = "wit-curator/0.1"
    respect_robots: bool = True
    respect_noai: bool = True
    allow_private_networks: bool = False
    pool_size: int = 32


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
    def __init__(self, kind: str, detail: str = "", status: int = 0):
        super().__init__(detail)
        self.kind, self.detail, self.status = kind, detail, status


def is_blocked_address(address: str) -> bool:
    """True for addresses an SSRF guard refuses (loopback, private, link-local, …)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


def noai_directive(header_value: str) -> Optional[str]:
    """The first noai-style directive in an ``X-Robots-Tag`` value, if any.

    Handles ``noai``, ``noai, noimageai`` and agent-scoped ``otherbot: noai``.
    """
    for part in header_value.replace(";", ",").split(","):
        token = part.split(":")[-1].strip().lower()
        if token in NOAI_DIRECTIVES:
            return token
    return None


class HttpClient:
    """See module docstring. Thread-safe: one instance serves a DoFn's thread pool."""

    def __init__(self, settings: ClientSettings):
        self.settings = settings
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=settings.pool_size, pool_maxsize=settings.pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = settings.user_agent
        self._dns: dict[str, list[str]] = {}
        self._robots: dict[str, Optional[urllib.robotparser.RobotFileParser]] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    # -- guards -------------------------------------------------------------

    def _resolve(self, host: str) -> list[str]:
        with self._lock:
            cached = self._dns.get(host)
        if cached is not None:
            return cached
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise _Failure(DNS, f"{host}: {exc}") from None
        addresses = sorted({info[4][0] for info in infos})
        with self._lock:
            self._dns[host] = addresses
        return addresses

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Failure(BAD_URL, f"unsupported url {url[:200]!r}")
        if not self.settings.allow_private_networks:
            # The guard resolves the name itself; urllib3 resolves again when it
            # connects (the DNS cache above narrows, not closes, that window).
            blocked = [a for a in self._resolve(parts.hostname) if is_blocked_address(a)]
            if blocked:
                raise _Failure(PRIVATE, f"{parts.hostname} resolves to {blocked[0]}")
        if self.settings.respect_robots and not self.allowed_by_robots(url):
            raise _Failure(ROBOTS, f"robots.txt disallows {parts.path or '/'}")

    def allowed_by_robots(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            known = origin in self._robots
            parser = self._robots.get(origin)
        if not known:
            parser = self._load_robots(origin)
            with self._lock:
                self._robots[origin] = parser
        if parser is None:
            return True
        return parser.can_fetch(self.settings.user_agent, url)

    def _load_robots(self, origin: str) -> Optional[urllib.robotparser.RobotFileParser]:
        """robots.txt of an origin; None (allow all) when absent or unreachable."""
        try:
            resp = self.session.get(
                origin + "/robots.txt", allow_redirects=True,
                timeout=(self.settings.connect_timeout_s, self.settings.read_timeout_s))
        except requests.RequestException as exc:
            log.debug("robots.txt of %s unreachable: %s", origin, exc)
            return None
        if resp.status_code in (401, 403):
            parser = urllib.robotparser.RobotFileParser()
            parser.disallow_all = True
            return parser
        if resp.status_code >= 400:
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(resp.text[:500_000].splitlines())
        return parser

    # -- fetching -----------------------------------------------------------

    def get(self, url: str, check_noai: bool = False) -> FetchResult:
        """GET with redirects, guards, retries and caps. Never raises for I/O."""
        attempts = 1 + max(0, self.settings.retries)
        for attempt in range(attempts):
            try:
                return self._get_following_redirects(url, check_noai)
            except _Failure as failure:
                retry_after = getattr(failure, "retry_after", None)
                retriable = failure.kind in (CONNECT, TIMEOUT) or failure.status in _RETRY_STATUSES
                if not retriable or attempt == attempts - 1:
                    return FetchResult(False, url, status=failure.status,
                                       failure=failure.kind, detail=failure.detail[:300])
                delay = retry_after if retry_after is not None else 0.5 * 2 ** attempt
                time.sleep(min(_MAX_RETRY_AFTER_S, delay) * (0.75 + 0.5 * random.random()))
        raise AssertionError("unreachable")

    def _get_following_redirects(self, url: str, check_noai: bool) -> FetchResult:
        deadline = time.monotonic() + self.settings.total_timeout_s
        seen = {url}
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            self._check_url(current)
            resp = self._request(current)
            try:
                if resp.is_redirect:
                    location = resp.headers.get("Location", "")
                    nxt = urljoin(current, location)
                    if not location or nxt in seen:
                        raise _Failure(REDIRECT_LOOP, f"redirect loop at {nxt[:200]}")
                    seen.add(nxt)
                    current = nxt
                    continue
                return self._finish(url, current, resp, check_noai, deadline)
            finally:
                resp.close()
        raise _Failure(REDIRECT_LOOP, f"more than {self.settings.max_redirects} redirects")

    def _request(self, url: str) -> requests.Response:
        try:
            return self.session.get(
                url, stream=True, allow_redirects=False,
                timeout=(self.settings.connect_timeout_s, self.settings.read_timeout_s))
        except requests.exceptions.ConnectTimeout as exc:
            raise _Failure(TIMEOUT, f"connect timeout: {exc}") from None
        except requests.exceptions.ReadTimeout as exc:
            raise _Failure(TIMEOUT, f"read timeout: {exc}") from None
        except requests.exceptions.InvalidURL as exc:
            raise _Failure(BAD_URL, str(exc)) from None
        except requests.RequestException as exc:
            raise _Failure(CONNECT, f"{type(exc).__name__}: {exc}") from None

    def _finish(self, url, final_url, resp, check_noai, deadline) -> FetchResult:
        status = resp.status_code
        if status >= 400:
            failure = _Failure(HTTP_4XX if status < 500 else HTTP_5XX, f"HTTP {status}", status)
            retry_after = resp.headers.get("Retry-After", "")
            if retry_after.strip().isdigit():
                failure.retry_after = float(retry_after)
            raise failure
        if check_noai and self.settings.respect_noai:
            directive = noai_directive(resp.headers.get("X-Robots-Tag", ""))
            if directive:
                raise _Failure(NOAI, f"X-Robots-Tag: {directive}", status)
        data = self._read_body(resp, deadline)
        return FetchResult(True, url, final_url, status, resp.headers.get("Content-Type", ""), data)

    def _read_body(self, resp: requests.Response, deadline: float) -> bytes:
        cap = self.settings.max_bytes
        declared = resp.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _Failure(TOO_LARGE, f"Content-Length {declared} > {cap}", resp.status_code)
        chunks, total = [], 0
        try:
            for chunk in resp.iter_content(chunk_size=65536):
                total += len(chunk)
                if total > cap:
                    raise _Failure(TOO_LARGE, f"body over {cap} bytes", resp.status_code)
                if time.monotonic() > deadline:
                    raise _Failure(TIMEOUT, "total deadline exceeded while reading body")
                chunks.append(chunk)
        except requests.exceptions.ConnectionError as exc:
            # urllib3 reports read timeouts mid-body as connection errors.
            kind = TIMEOUT if "timed out" in str(exc).lower() else CONNECT
            raise _Failure(kind, f"body: {exc}") from None
        except requests.RequestException as exc:
            raise _Failure(CONNECT, f"body: {type(exc).__name__}: {exc}") from None
        return b"".join(chunks)
