"""Polite, guarded HTTP client shared by page and image fetches (no Beam import).

Input: URLs. Output: ``FetchResult`` — bytes, final URL and headers, or a
failure kind (``TIMEOUT``, ``DNS``, ``TLS``, ``HTTP_4XX``, ...) that each stage
maps to its own ``DropReason`` — with a detail string. Never raises for I/O.

For every request, on every redirect hop:
- SSRF guard: the host is resolved (and cached) and loopback, private,
  link-local, multicast and reserved addresses are refused unless
  ``allow_private_networks`` (or the host:port is in ``guard_exempt``).
- robots.txt fetched once per origin and cached, with its Crawl-delay.
- Per-host spacing: requests to one host start at least ``min_interval`` (or the
  robots Crawl-delay) apart.
- ``X-Robots-Tag: noai`` / ``noimageai`` checked from the headers, before the body.
- Connect/read timeouts plus a total deadline enforced on the socket
  (transforms/deadline.py); the body streamed under a byte cap
  (Content-Length checked first, then counted, after any Content-Encoding).
Retries with exponential backoff and jitter on connection errors, 429 and 5xx,
honouring Retry-After. Created in ``DoFn.setup()``: it holds a connection pool.

Requests are prepared here and sent through requests' pooled HTTPAdapter; the
environment's proxies (``HTTP(S)_PROXY``, ``NO_PROXY``) and CA bundle
(``REQUESTS_CA_BUNDLE``) are honoured, read once per origin. No cookies are kept
and no ``.netrc`` credentials are sent: an image host gets the same anonymous
request every time.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import os
import random
import socket
import threading
import time
import urllib.robotparser
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urljoin, urlsplit

import requests

from transforms.deadline import DeadlineAdapter, Watchdog

log = logging.getLogger(__name__)

# Failure kinds; stages map them to their own DropReason (crawl.* or fetch.*).
TIMEOUT, CONNECT, DNS, TLS, HTTP_4XX, HTTP_5XX = "timeout", "connect", "dns", "tls", "http_4xx", "http_5xx"
TOO_LARGE, ROBOTS, NOAI, PRIVATE = "too_large", "robots_disallowed", "noai", "private_address"
REDIRECT_LOOP, TOO_MANY_REDIRECTS = "redirect_loop", "too_many_redirects"
BAD_URL, BAD_RESPONSE, INCOMPLETE, ERROR = "bad_url", "bad_response", "incomplete_body", "error"

NOAI_DIRECTIVES = frozenset({"noai", "noimageai"})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 30.0
_ROBOTS_MAX_BYTES = 500_000
_READ_CHUNK = 1 << 20


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
    guard_exempt: tuple = ()  # "host:port" entries the SSRF guard lets through
    min_interval_s: float = 0.0  # per host, between request starts
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
    def __init__(self, kind: str, detail: str = "", status: int = 0, retry_after: Optional[float] = None,
                 final: bool = False):
        super().__init__(detail)
        self.kind, self.detail, self.status, self.retry_after = kind, detail, status, retry_after
        self.final = final  # not worth a retry (a server that blew the total deadline)


def is_blocked_address(address: str) -> bool:
    """True for addresses an SSRF guard refuses (loopback, private, link-local, …)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
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


def parse_retry_after(value: str) -> Optional[float]:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    value = (value or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


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


class HttpClient:
    """See module docstring. Thread-safe: one instance serves a DoFn's thread pool."""

    def __init__(self, settings: ClientSettings):
        self.settings = settings
        self.watchdog = Watchdog()
        # requests' pooled transport, used without a Session (see _request):
        # Session.request re-reads the proxy environment, netrc and cookie jars
        # on every call, about 1 ms of GIL-held CPU per image. What the
        # environment says is read here once instead: CA bundle now, proxies
        # once per origin.
        self._adapter = DeadlineAdapter(self.watchdog, pool_connections=settings.pool_size,
                                        pool_maxsize=settings.pool_size)
        self._headers = requests.structures.CaseInsensitiveDict(
            {"User-Agent": settings.user_agent, "Accept-Encoding": "identity",  # images are compressed
             "Accept": "*/*", "Connection": "keep-alive"})
        self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict] = {}
        self._dns: dict[str, list[str]] = {}
        self._robots: dict[str, Optional[urllib.robotparser.RobotFileParser]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._next_slot: dict[str, float] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.watchdog.close()
        self._adapter.close()

    # -- guards -------------------------------------------------------------

    def _resolve(self, host: str) -> list[str]:
        with self._lock:
            cached = self._dns.get(host)
        if cached is not None:
            return cached
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise _Failure(DNS, f"{host}: {exc}") from None
        addresses = sorted({info[4][0] for info in infos})
        with self._lock:
            self._dns[host] = addresses
        return addresses

    def _check_url(self, url: str, check_robots: bool = True) -> None:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise _Failure(BAD_URL, f"bad port in {url[:200]!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Failure(BAD_URL, f"unsupported url {url[:200]!r}")
        exempt = f"{parts.hostname}:{port or (443 if parts.scheme == 'https' else 80)}"
        if not self.settings.allow_private_networks and exempt not in self.settings.guard_exempt:
            # The guard resolves the name itself; urllib3 resolves again when it
            # connects (the DNS cache above narrows, not closes, that window).
            blocked = [a for a in self._resolve(parts.hostname) if is_blocked_address(a)]
            if blocked:
                raise _Failure(PRIVATE, f"{parts.hostname} resolves to {blocked[0]}")
        if check_robots and self.settings.respect_robots and not self.allowed_by_robots(url):
            raise _Failure(ROBOTS, f"robots.txt disallows {parts.path or '/'}")

    def _robots_for(self, url: str) -> Optional[urllib.robotparser.RobotFileParser]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            lock = self._robots_locks.setdefault(origin, threading.Lock())
        with lock:  # one fetch per origin, even when many threads ask at once
            if origin not in self._robots:
                self._robots[origin] = self._load_robots(origin)
            return self._robots[origin]

    def allowed_by_robots(self, url: str) -> bool:
        parser = self._robots_for(url)
        return True if parser is None else parser.can_fetch(self.settings.user_agent, url)

    def crawl_delay(self, url: str) -> float:
        """The robots.txt Crawl-delay for our user agent (0 when none)."""
        if not self.settings.respect_robots:
            return 0.0
        parser = self._robots_for(url)
        delay = parser.crawl_delay(self.settings.user_agent) if parser is not None else None
        return float(delay or 0.0)

    def _load_robots(self, origin: str) -> Optional[urllib.robotparser.RobotFileParser]:
        """robots.txt of an origin; None (allow all) when absent or unreachable."""
        try:
            result = self._get_following_redirects(origin + "/robots.txt", False, robots=True)
        except _Failure as failure:
            if failure.status in (401, 403):
                parser = urllib.robotparser.RobotFileParser()
                parser.disallow_all = True
                return parser
            log.debug("robots.txt of %s unavailable: %s", origin, failure.detail)
            return None
        parser = urllib.robotparser.RobotFileParser()
        parser.parse(result.data.decode("utf-8", errors="replace").splitlines())
        return parser

    def _wait_for_slot(self, url: str) -> None:
        """Space requests to one host by max(min_interval, Crawl-delay)."""
        interval = max(self.settings.min_interval_s, self.crawl_delay(url))
        if interval <= 0:
            return
        host = urlsplit(url).netloc
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_slot.get(host, 0.0))
            self._next_slot[host] = start + interval
        if start > now:
            time.sleep(start - now)

    def next_slot(self, url: str) -> float:
        """When (monotonic) the next request to this URL's host may start."""
        with self._lock:
            return self._next_slot.get(urlsplit(url).netloc, 0.0)

    # -- fetching -----------------------------------------------------------

    def get(self, url: str, check_noai: bool = False) -> FetchResult:
        """GET with redirects, guards, retries and caps."""
        attempts = 1 + max(0, self.settings.retries)
        for attempt in range(attempts):
            try:
                self._wait_for_slot(url)
                return self._get_following_redirects(url, check_noai)
            except _Failure as failure:
                retriable = not failure.final and (failure.kind in (CONNECT, TIMEOUT, INCOMPLETE)
                                                   or failure.status in _RETRY_STATUSES)
                if not retriable or attempt == attempts - 1:
                    return FetchResult(False, url, status=failure.status,
                                       failure=failure.kind, detail=failure.detail[:300])
                delay = failure.retry_after if failure.retry_after is not None else 0.5 * 2 ** attempt
                time.sleep(min(_MAX_RETRY_AFTER_S, delay) * (0.75 + 0.5 * random.random()))
        raise AssertionError("unreachable")

    def _get_following_redirects(self, url: str, check_noai: bool, robots: bool = False) -> FetchResult:
        deadline = time.monotonic() + self.settings.total_timeout_s
        seen = {url}
        current = url
        with self.watchdog.scope(deadline) as scope:
            for _hop in range(self.settings.max_redirects + 1):
                self._check_url(current, check_robots=not robots)
                resp = self._request(current, scope)
                try:
                    if not resp.is_redirect:
                        return self._finish(url, current, resp, check_noai, deadline, scope, robots)
                    location = resp.headers.get("Location", "")
                    nxt = urljoin(current, location)
                    if not location or nxt in seen:
                        raise _Failure(REDIRECT_LOOP, f"redirect loop at {nxt[:200]}", resp.status_code)
                    seen.add(nxt)
                    current = nxt
                finally:
                    resp.close()
        raise _Failure(TOO_MANY_REDIRECTS, f"more than {self.settings.max_redirects} redirects")

    def _proxies_for(self, url: str) -> dict:
        """The environment's proxies (HTTP(S)_PROXY, NO_PROXY) for this URL's origin, cached."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        found = self._proxies.get(origin)
        if found is None:
            found = requests.utils.get_environ_proxies(origin)
            with self._lock:
                self._proxies[origin] = found
        return found

    def _request(self, url: str, scope) -> requests.Response:
        """One GET, no redirects followed, body not read (stream)."""
        try:
            prep = requests.PreparedRequest()
            prep.prepare_method("GET")
            prep.prepare_url(url, None)
            prep.prepare_headers(self._headers)
            prep.prepare_body(None, None)
            return self._adapter.send(
                prep, stream=True, verify=self._verify, proxies=self._proxies_for(url),
                timeout=(self.settings.connect_timeout_s, self.settings.read_timeout_s))
        except requests.RequestException as exc:
            if scope.expired:
                raise _Failure(TIMEOUT, "total deadline exceeded before the response headers", final=True) from None
            raise _Failure(*classify_exception(exc)) from None

    def _finish(self, url, final_url, resp, check_noai, deadline, scope, robots) -> FetchResult:
        status = resp.status_code
        if status >= 400:
            kind = HTTP_4XX if status < 500 else HTTP_5XX
            raise _Failure(kind, f"HTTP {status}", status, parse_retry_after(resp.headers.get("Retry-After", "")))
        if check_noai and self.settings.respect_noai:
            directive = noai_directive(resp.headers.get("X-Robots-Tag", ""))
            if directive:
                raise _Failure(NOAI, f"X-Robots-Tag: {directive}", status)
        cap = _ROBOTS_MAX_BYTES if robots else self.settings.max_bytes
        data = self._read_body(resp, deadline, scope, cap)
        return FetchResult(True, url, final_url, status, resp.headers.get("Content-Type", ""), data)

    def _read_body(self, resp: requests.Response, deadline: float, scope, cap: int) -> bytes:
        declared = resp.headers.get("Content-Length", "").strip()
        if declared.isdigit() and int(declared) > cap:
            raise _Failure(TOO_LARGE, f"Content-Length {declared} > {cap}", resp.status_code)
        chunks, total = [], 0
        try:
            # Large reads: every chunk is a trip through requests/urllib3/http.client
            # under the GIL. Blocking is bounded by the read timeout and the watchdog.
            for chunk in resp.iter_content(chunk_size=_READ_CHUNK):
                total += len(chunk)
                if total > cap:
                    raise _Failure(TOO_LARGE, f"body over {cap} bytes", resp.status_code)
                if time.monotonic() > deadline:
                    raise _Failure(TIMEOUT, "total deadline exceeded while reading the body", final=True)
                chunks.append(chunk)
        except requests.RequestException as exc:
            if scope.expired:
                raise _Failure(TIMEOUT, "total deadline exceeded while reading the body", final=True) from None
            kind, detail = classify_exception(exc)
            raise _Failure(kind, f"body: {detail}") from None
        if scope.expired:
            raise _Failure(TIMEOUT, "total deadline exceeded while reading the body", final=True)
        return b"".join(chunks)
