"""Polite, guarded HTTP client shared by page and image fetches (no Beam import).

Input: URLs. Output: ``FetchResult`` — bytes, final URL and headers, or a failure kind
(transforms/http_result.py; each stage maps it to its own ``DropReason``) with a detail.
Never raises for I/O. On every request and every redirect hop:
- SSRF guard (transforms/ssrf.py): addresses that are not globally routable are refused
  (``PRIVATE``) unless ``allow_private_networks`` / ``guard_exempt``, where the socket is
  made (one resolution, only checked addresses connected, the peer checked again: no DNS
  rebinding); a cached pre-check here fails early on every hop. Behind an environment
  proxy only the pre-check applies: the proxy is trusted as configured.
- robots.txt to RFC 9309 (transforms/robots.py, Protego), once per origin per worker
  process, shared by every client there, kept ``robots_cache_s`` (5 minutes when it was
  unavailable): 4xx = allow all, 5xx and unreachable = ``ROBOTS_UNAVAILABLE``.
- TDMRep (transforms/tdmrep.py) with ``respect_tdmrep``: ``/.well-known/tdmrep.json``
  refuses a reserved URL before it is requested, a ``tdm-reservation: 1`` header before
  the body is read (``TDM_RESERVED``); ``X-Robots-Tag: noai``/``noimageai`` for our product
  token, from the headers, before the body (``NOAI``).
- Per-host spacing by ``min_interval`` or Crawl-delay; a Retry-After defers the host. A hot
  host's key (``share``, transforms/host_share.py) starts requests only in its own wall-clock
  time slices, so the spacing holds across the host's keys and workers. No
  wait is unbounded: a Crawl-delay or Retry-After above ``max_host_delay_s`` is
  ``HOST_TOO_SLOW`` at once (a Retry-After marks the host for the rest of the process).
- Header numbers (Content-Length, Retry-After) read as ASCII digits; garbage is ignored.
- Connect/read timeouts and a total deadline on the socket (transforms/deadline.py); the
  body streamed under a byte cap (Content-Length first, then counted after decoding).
Retries with backoff and jitter on connection errors, 429 and 5xx. Created in
``DoFn.setup()`` (it holds a connection pool). Requests go straight to requests' pooled
HTTPAdapter: proxies (``HTTP(S)_PROXY``, ``NO_PROXY``) and the CA bundle
(``REQUESTS_CA_BUNDLE``) are read once per origin; no cookies or ``.netrc`` credentials.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import requests

from transforms import response_headers, robots, ssrf, tdmrep
from transforms.deadline import DeadlineAdapter, Watchdog
from transforms.host_share import WHOLE, HostShare, TimeSlices
from transforms.http_result import (  # noqa: F401  (failure kinds and FetchResult are re-exported)
    BAD_RESPONSE, BAD_URL, CONNECT, DNS, ERROR, HOST_TOO_SLOW, HTTP_4XX, HTTP_5XX, INCOMPLETE, NOAI, PRIVATE,
    REDIRECT_LOOP, REFUSED_TYPE, ROBOTS, ROBOTS_UNAVAILABLE, TDM_RESERVED, TIMEOUT, TLS, TOO_LARGE,
    TOO_MANY_REDIRECTS, FetchResult, _Failure, _host_key, _join_location, _origin, _path, _split, classify_exception)
# Re-exported (callers import them from here): header parsing and the address policy live apart.
from transforms.response_headers import NOAI_DIRECTIVES, declared_length, noai_directive, parse_retry_after  # noqa
from transforms.ssrf import is_blocked_address  # noqa: F401

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_BACKOFF_S = 30.0  # exponential backoff without a Retry-After
_READ_CHUNK = 1 << 20
_DNS_CACHE_MAX = 100_000  # names kept by the SSRF pre-check's resolver cache
_ROBOTS_MAX_BYTES = robots.ROBOTS_MAX_BYTES  # (a parameter of _finish is named robots)


@dataclass(frozen=True)
class ClientSettings:
    """The client's knobs (pipeline/specs.py: ``client_settings``, from the ``fetch`` section)."""

    connect_timeout_s: float
    read_timeout_s: float
    total_timeout_s: float
    max_bytes: int
    max_redirects: int
    retries: int
    user_agent: str
    respect_robots: bool
    respect_noai: bool
    allow_private_networks: bool
    guard_exempt: tuple  # "host:port" entries the SSRF guard lets through
    min_interval_s: float  # per host, between request starts
    pool_size: int  # connections kept
    max_host_delay_s: float  # a Crawl-delay / Retry-After above this: HOST_TOO_SLOW, no wait
    respect_tdmrep: bool  # tdm-reservation header and /.well-known/tdmrep.json
    robots_cache_s: float  # lifetime of a robots.txt / tdmrep.json answer in this process
    # MIME types refused from the headers, body not read (REFUSED_TYPE); FetchImages sets it, not config
    refuse_types: tuple


def _delay_too_long(delay: float, limit: float) -> bool:
    """The bound on waits: a host asking for more than ``limit`` seconds is not waited for."""
    return delay > limit


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
        self._policy = ssrf.AddressPolicy.of(settings.allow_private_networks, settings.guard_exempt)
        self._adapter = DeadlineAdapter(self.watchdog, self._policy, pool_connections=settings.pool_size,
                                        pool_maxsize=settings.pool_size)
        self._headers = requests.structures.CaseInsensitiveDict(
            {"User-Agent": settings.user_agent, "Accept-Encoding": "identity",  # images are compressed
             "Accept": "*/*", "Connection": "keep-alive"})
        self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._proxies: dict[str, dict] = {}
        self._dns: dict[str, list[str]] = {}
        self._next_slot: dict[str, float] = {}
        self._slices = TimeSlices()
        self._lock = threading.Lock()

    def close(self) -> None:
        self.watchdog.close()
        self._adapter.close()

    # -- guards -------------------------------------------------------------

    def _resolve(self, host: str) -> list[str]:
        """The addresses of a name, for the pre-check (cached; the connection resolves again and
        checks what it connects to, so a stale or rebound entry here opens nothing)."""
        with self._lock:
            cached = self._dns.get(host)
        if cached is not None:
            return cached
        try:
            infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        except socket.gaierror as exc:
            raise _Failure(DNS, f"{host[:200]}: {exc}") from None
        except (OSError, ValueError) as exc:  # a NUL, a bad IDNA label, an over-long name
            raise _Failure(BAD_URL, f"host {host[:200]!r}: {exc}") from None
        addresses = sorted({info[4][0] for info in infos})
        with self._lock:
            if len(self._dns) >= _DNS_CACHE_MAX:
                self._dns.clear()  # long runs meet millions of hosts: bounded, not LRU
            self._dns[host] = addresses
        return addresses

    def _check_address(self, parts) -> None:
        """The SSRF pre-check of one hop: the host's addresses, refused ones failing ``PRIVATE``."""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self._policy.unguarded(parts.hostname, port):
            return
        literal = ssrf.parse_address(parts.hostname)
        if literal is not None:
            addresses = [parts.hostname]
        elif requests.utils.select_proxy(parts.geturl(), self._proxies_for(parts.geturl())):
            # The proxy resolves the name and is the peer: check what we can see, best effort.
            try:
                addresses = self._resolve(parts.hostname)
            except _Failure:
                return
        else:
            addresses = self._resolve(parts.hostname)
        detail = ssrf.refused_among(parts.hostname, addresses)
        if detail:
            raise _Failure(PRIVATE, detail)

    def _check_url(self, url: str, check_robots: bool = True) -> None:
        parts = _split(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Failure(BAD_URL, f"unsupported url {url[:200]!r}")
        self._check_address(parts)
        if check_robots:
            self._check_site_policy(url)

    @property
    def agent(self) -> str:
        """Our product token (robots.txt groups, X-Robots-Tag scopes)."""
        return robots.product_token(self.settings.user_agent)

    def _check_site_policy(self, url: str) -> None:
        """What the URL's origin said in robots.txt and tdmrep.json, before a request is sent."""
        if self.settings.respect_robots:
            policy = self._robots_for(url)
            if policy.is_unavailable:
                raise _Failure(ROBOTS_UNAVAILABLE, policy.detail)
            if not policy.allows(url):
                raise _Failure(ROBOTS, f"robots.txt disallows {_path(url)[:200]}")
        if self.settings.respect_tdmrep:
            rule = self._tdm_rules_for(url).reserving_rule(url)
            if rule is not None:
                policy_text = f"; tdm-policy {rule.policy}" if rule.policy else ""
                raise _Failure(TDM_RESERVED, f"tdmrep.json location {rule.location!r} reserves TDM{policy_text}")

    def _robots_for(self, url: str) -> robots.RobotsPolicy:
        """The robots.txt policy of the URL's origin, from the process-wide cache (one fetch per origin)."""
        origin, agent = _origin(url), self.agent
        return robots.CACHE.get(("robots.txt", origin, agent), lambda: robots.policy_from(
            self._fetch_site_file(origin + "/robots.txt", True), agent, self.settings.robots_cache_s))

    def allowed_by_robots(self, url: str) -> bool:
        policy = self._robots_for(url)
        return not policy.is_unavailable and policy.allows(url)

    def crawl_delay(self, url: str) -> float:
        """The robots.txt Crawl-delay for our user agent (0 when none)."""
        if not self.settings.respect_robots:
            return 0.0
        return self._robots_for(url).crawl_delay()

    def _tdm_rules_for(self, url: str) -> tdmrep.TdmRules:
        origin = _origin(url)
        return robots.CACHE.get(("tdmrep.json", origin), lambda: tdmrep.rules_from(
            self._fetch_site_file(origin + tdmrep.TDMREP_PATH, tdmrep.TDMREP_MAX_BYTES + 1),
            self.settings.robots_cache_s))

    def _fetch_site_file(self, url: str, cap) -> FetchResult:
        """A site file (robots.txt: ``cap`` True; else its byte cap): redirects followed and
        SSRF-checked, no robots/TDM checks of its own, the body cut at the cap. No retries."""
        try:
            return self._get_following_redirects(url, False, robots=cap)
        except _Failure as failure:
            log.debug("%s: %s %s", url[:200], failure.kind, failure.detail)
            return FetchResult(False, url, status=failure.status, failure=failure.kind, detail=failure.detail[:300])

    def _wait_for_slot(self, url: str, share: HostShare = WHOLE) -> None:
        """Space requests to one host by max(min_interval, Crawl-delay), or refuse a host too slow.

        robots.txt and tdmrep.json are loaded here, before the request's total
        deadline starts. Each caller reserves the next free start, so a wait is at
        most (requests queued ahead for the host) x the interval, each interval at
        most ``max_host_delay_s``. One key of a host split over several (``share``)
        waits for its next wall-clock time slice instead (transforms/host_share.py):
        starts from all the host's keys, on any worker, stay the interval apart.
        """
        parts = _split(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return  # not fetchable: _check_url says why, no site file is asked for
        host = _host_key(url)
        marked = robots.SLOW_HOSTS.reason(host)
        if marked:
            raise _Failure(HOST_TOO_SLOW, marked, final=True)
        delay = self.crawl_delay(url)
        if _delay_too_long(delay, self.settings.max_host_delay_s):
            raise _Failure(HOST_TOO_SLOW, f"robots.txt Crawl-delay {delay:g} s > fetch.max_host_delay_s "
                                          f"{self.settings.max_host_delay_s:g} s", final=True)
        if self.settings.respect_tdmrep:
            self._tdm_rules_for(url)
        interval = max(self.settings.min_interval_s, delay)
        if interval > 0 and not share.whole:
            self._wait_for_turn(host, share, interval)
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_slot.get(host, 0.0))
            if interval > 0 or start > now:
                self._next_slot[host] = start + interval
        if start > now:
            time.sleep(start - now)

    def _wait_for_turn(self, host: str, share: HostShare, interval: float) -> None:
        """Sleep until ``share``'s next time slice of ``host``, and not before a Retry-After deferral."""
        with self._lock:
            deferred = self._next_slot.get(host, 0.0) - time.monotonic()
        not_before = time.time() + max(0.0, deferred)
        if self._slices.wait(host, share, interval, not_before, self.settings.max_host_delay_s) is None:
            raise _Failure(HOST_TOO_SLOW, f"missed every time slice of key {share.index}/{share.count} for "
                                          f"fetch.max_host_delay_s {self.settings.max_host_delay_s:g} s "
                                          "(this worker's sleeps overshoot the start window)", final=True)

    def _defer_host(self, url: str, seconds: float) -> None:
        """A Retry-After: no request to this host starts before ``seconds`` from now."""
        host = _host_key(url)
        with self._lock:
            self._next_slot[host] = max(self._next_slot.get(host, 0.0), time.monotonic() + seconds)

    def _too_slow_after(self, url: str, failure: "_Failure") -> Optional[str]:
        """A Retry-After above max_host_delay_s: the host is marked too slow; the detail, else None."""
        if failure.retry_after is None or failure.status not in _RETRY_STATUSES:
            return None
        limit = self.settings.max_host_delay_s
        if not _delay_too_long(failure.retry_after, limit):
            return None
        detail = f"HTTP {failure.status} Retry-After {failure.retry_after:g} s > fetch.max_host_delay_s {limit:g} s"
        robots.SLOW_HOSTS.mark(_host_key(url), min(failure.retry_after, self.settings.robots_cache_s),
                               f"earlier {detail}: the host is skipped until then")
        return detail

    # -- fetching -----------------------------------------------------------

    def get(self, url: str, check_noai: bool = False, share: HostShare = WHOLE) -> FetchResult:
        """GET with redirects, guards, retries and caps; ``share``: the key of a split host it runs for."""
        attempts = 1 + max(0, self.settings.retries)
        for attempt in range(attempts):
            try:
                self._wait_for_slot(url, share)
                return self._get_following_redirects(url, check_noai)
            except _Failure as failure:
                slow = self._too_slow_after(url, failure)
                if slow is not None:
                    return FetchResult(False, url, status=failure.status, failure=HOST_TOO_SLOW, detail=slow)
                waits = failure.retry_after is not None and failure.status in _RETRY_STATUSES
                if waits:
                    # The server's wait, never shorter (jitter only adds), for every later
                    # request to the host, this one's retry included: _wait_for_slot sleeps.
                    self._defer_host(url, min(self.settings.max_host_delay_s,
                                              failure.retry_after * (1.0 + 0.25 * random.random())))
                retriable = not failure.final and (failure.kind in (CONNECT, TIMEOUT, INCOMPLETE)
                                                   or failure.status in _RETRY_STATUSES)
                if not retriable or attempt == attempts - 1:
                    return FetchResult(False, url, status=failure.status,
                                       failure=failure.kind, detail=failure.detail[:300])
                if not waits:
                    time.sleep(min(_MAX_BACKOFF_S, 0.5 * 2 ** attempt) * (0.75 + 0.5 * random.random()))
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
                    nxt = _join_location(current, location)
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
            refused = ssrf.refusal_in(exc)
            if refused is not None:  # the connect-time guard (transforms/ssrf.py)
                raise _Failure(PRIVATE, refused.detail, final=True) from None
            if scope.expired:
                raise _Failure(TIMEOUT, "total deadline exceeded before the response headers", final=True) from None
            raise _Failure(*classify_exception(exc)) from None

    def _finish(self, url, final_url, resp, check_noai, deadline, scope, robots) -> FetchResult:
        status = resp.status_code
        if status >= 400:
            kind = HTTP_4XX if status < 500 else HTTP_5XX
            retry_after = response_headers.parse_retry_after(resp.headers.get("Retry-After", ""))
            raise _Failure(kind, f"HTTP {status}", status, retry_after)
        if robots:  # a site file (robots.txt, tdmrep.json): no opt-out checks, cut at its cap
            # +1: a body longer than the RFC's 500 KiB is seen to be longer (and cut at a line end).
            cap = _ROBOTS_MAX_BYTES + 1 if robots is True else int(robots)
            data = self._read_body(resp, deadline, scope, cap, truncate=True)
            return FetchResult(True, url, final_url, status, resp.headers.get("Content-Type", ""), data)
        self._check_response_opt_outs(resp, check_noai)
        content_type = resp.headers.get("Content-Type", "")
        if content_type.split(";")[0].strip().lower() in self.settings.refuse_types:
            raise _Failure(REFUSED_TYPE, f"Content-Type {content_type[:100]}", status, final=True)
        data = self._read_body(resp, deadline, scope, self.settings.max_bytes)
        return FetchResult(True, url, final_url, status, resp.headers.get("Content-Type", ""), data)

    def _check_response_opt_outs(self, resp: requests.Response, check_noai: bool) -> None:
        """TDMRep header (pages and images) and X-Robots-Tag noai (images), from the headers only."""
        values = response_headers.header_values
        if self.settings.respect_tdmrep and tdmrep.header_reserved(values(resp, "tdm-reservation")):
            policy = resp.headers.get("tdm-policy", "")
            raise _Failure(TDM_RESERVED, "tdm-reservation: 1" + (f"; tdm-policy {policy[:200]}" if policy else ""),
                           resp.status_code)
        if check_noai and self.settings.respect_noai:
            directive = response_headers.noai_directive(values(resp, "X-Robots-Tag"), self.agent)
            if directive:
                raise _Failure(NOAI, f"X-Robots-Tag: {directive}", resp.status_code)

    def _read_body(self, resp: requests.Response, deadline: float, scope, cap: int, truncate: bool = False) -> bytes:
        """The body, at most ``cap`` bytes: over it, TOO_LARGE — or, with ``truncate``, its first ``cap`` bytes."""
        declared = response_headers.declared_length(resp.headers.get("Content-Length", ""))
        if declared is not None and declared > cap and not truncate:
            raise _Failure(TOO_LARGE, f"Content-Length {declared} > {cap}", resp.status_code)
        chunks, total = [], 0
        try:
            # Large reads: every chunk is a trip through requests/urllib3/http.client
            # under the GIL. Blocking is bounded by the read timeout and the watchdog.
            for chunk in resp.iter_content(chunk_size=_READ_CHUNK):
                total += len(chunk)
                if total > cap and truncate:
                    chunks.append(chunk[:len(chunk) - (total - cap)])
                    break
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
