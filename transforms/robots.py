"""robots.txt to RFC 9309, and the per-process caches of what sites said (no Beam import).

Input: the bytes of an origin's ``/robots.txt`` (or how fetching it failed) and our
product token. Output: a ``RobotsPolicy`` — may a URL be fetched, and the group's
Crawl-delay. Parsing is Protego's (RFC 9309: ``*`` and ``$`` wildcards, longest
match, an allow winning a tie); around it:

- the first 500 KiB are parsed (a larger, or inflating, body is cut there, at the
  last complete line), a UTF-8 BOM is stripped;
- groups are matched by our product token (``wit-curator`` in
  ``wit-curator/0.1 (+url)``), case-insensitively and whole — RFC 9309 §2.2.1, as
  Google does: a ``User-agent: wit`` group is not ours, ``User-agent: WIT-Curator/2``
  is;
- a Crawl-delay is taken only when it is an ASCII number (``[0-9]+(.[0-9]+)?``);
  anything else (``²``, ``1e400``, ``nan``) is ignored, never raised;
- fetch status (RFC 9309 §2.3.1): 2xx parsed; redirects followed by the client (5
  hops, each SSRF-checked); 4xx (401/403 included) and a redirect loop = no
  robots.txt, allow all; 5xx, 429 and unreachable (DNS, connect, TLS, timeout,
  refused redirect target) = complete disallow, the ``unavailable`` policy, which
  the client reports as ``robots_unavailable``.

Cache lifetime: one answer per (origin, product token) per worker process, shared
by every ``HttpClient`` there (the crawl's and the image fetch's). A good answer
(parsed or absent) is kept ``fetch.robots_cache_s`` (default 86400 s, RFC 9309
§2.4's 24 hours); an ``unavailable`` one only ``UNAVAILABLE_TTL_S`` (300 s), then
robots.txt is fetched again — a host whose robots.txt 503s once is not refused for
a day. The same cache holds tdmrep.json answers (transforms/tdmrep.py). At most
``MAX_ENTRIES`` origins are kept (least recently used dropped first).

``SLOW_HOSTS`` marks hosts that asked for a Retry-After above
``fetch.max_host_delay_s``: later requests to them fail at once (``host_too_slow``)
until that time has passed (at most ``fetch.robots_cache_s``).
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Optional

from protego import Protego

log = logging.getLogger(__name__)

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309 §2.5: parse at least the first 500 KiB
UNAVAILABLE_TTL_S = 300.0  # a 5xx/unreachable robots.txt is asked again after this long
MAX_ENTRIES = 10_000  # origins remembered per process (robots.txt and tdmrep.json each)

_BOM = b"\xef\xbb\xbf"
_OTHER_AGENT = "~other"  # stands in for every group that is not ours nor "*": it can never match a token
_AGENT_LINE = re.compile(r"(\s*user[- ]?agent\s*(?::|\s))\s*(.*)", re.IGNORECASE | re.DOTALL)
_DELAY_LINE = re.compile(r"(\s*crawl[- ]delay\s*(?::|\s))\s*(.*)", re.IGNORECASE | re.DOTALL)
_ASCII_NUMBER = re.compile(r"([0-9]+)(?:\.[0-9]+)?")
_MAX_DELAY = "1000000000"  # a Crawl-delay of more digits still asks for a very long wait: read as this
_IDENTIFIER = re.compile(r"[A-Za-z_-]+")  # RFC 9309 product-token characters

# How a failed robots.txt fetch reads (client failure kinds, see http_client).
_ABSENT_KINDS = frozenset({"http_4xx", "redirect_loop", "too_many_redirects"})


@functools.lru_cache(maxsize=64)
def product_token(user_agent: str) -> str:
    """Our product token, lowercased: the identifier at the start of the User-Agent before any "/"."""
    match = _IDENTIFIER.match((user_agent or "").split("/", 1)[0].strip())
    return match.group(0).lower() if match else ""


@dataclass(frozen=True, eq=False)
class RobotsPolicy:
    """What an origin's robots.txt says to us. ``state``: "parsed", "absent" or "unavailable"."""

    state: str
    detail: str = ""
    parser: Optional[Protego] = None
    token: str = ""

    @classmethod
    def absent(cls, detail: str = "") -> "RobotsPolicy":
        return cls("absent", detail)

    @classmethod
    def unavailable(cls, detail: str) -> "RobotsPolicy":
        return cls("unavailable", detail[:300])

    @property
    def is_unavailable(self) -> bool:
        return self.state == "unavailable"

    def allows(self, url: str) -> bool:
        if self.state == "unavailable":
            return False  # RFC 9309 §2.3.1.4: complete disallow
        if self.parser is None:
            return True
        try:
            return self.parser.can_fetch(url, self.token)
        except ValueError:  # a URL Protego cannot split (bad IPv6 literal): not ours to fetch
            return False

    def crawl_delay(self) -> float:
        """The Crawl-delay of our group in seconds (0 when none)."""
        if self.parser is None:
            return 0.0
        delay = self.parser.crawl_delay(self.token)
        if not isinstance(delay, (int, float)) or not math.isfinite(delay) or delay < 0:
            return 0.0
        return float(delay)


def policy_for_failure(kind: str, status: int, detail: str) -> RobotsPolicy:
    """RFC 9309 §2.3.1 for a robots.txt that could not be had: 4xx (and redirect trouble)
    allow all; 5xx, 429 and network failures disallow all (``unavailable``)."""
    if kind in _ABSENT_KINDS and status != 429:  # 429 is "try later", not "there is none" (Google too)
        return RobotsPolicy.absent(f"robots.txt {kind} {status or ''}".strip())
    return RobotsPolicy.unavailable(f"robots.txt unavailable ({kind}): {detail}")


def policy_from(result, token: str, cache_s: float) -> tuple[RobotsPolicy, float]:
    """(policy, seconds to trust it) from the client's ``FetchResult`` of /robots.txt."""
    if result.ok:
        policy = parse_robots(result.data, token)
    else:
        policy = policy_for_failure(result.failure, result.status, result.detail)
    return policy, lifetime(policy, cache_s)


def lifetime(policy: RobotsPolicy, cache_s: float) -> float:
    """Seconds a policy is trusted: ``cache_s``, or a few minutes for an unavailable answer."""
    return min(UNAVAILABLE_TTL_S, cache_s) if policy.is_unavailable else cache_s


def _strip_bom(body: bytes) -> bytes:
    return body[len(_BOM):] if body.startswith(_BOM) else body


def _truncate(body: bytes, limit: int = ROBOTS_MAX_BYTES) -> bytes:
    """The first ``limit`` bytes, without a last line cut in the middle (it could read wider)."""
    if len(body) <= limit:
        return body
    head = body[:limit]
    cut = max(head.rfind(b"\n"), head.rfind(b"\r"))
    return head[:cut + 1] if cut >= 0 else b""


def _agent_line(line: str, token: str) -> str:
    match = _AGENT_LINE.match(line.split("#", 1)[0])
    if not match or not match.group(2).strip():
        return line
    value = match.group(2).strip()
    if value[0] == "*" and (len(value) == 1 or value[1].isspace()):
        agent = "*"
    else:
        name = _IDENTIFIER.match(value)
        agent = token if name and token and name.group(0).lower() == token else _OTHER_AGENT
    return f"User-agent: {agent}"


def _delay_line(line: str) -> str:
    match = _DELAY_LINE.match(line.split("#", 1)[0])
    if not match:
        return line
    number = _ASCII_NUMBER.fullmatch(match.group(2).strip())
    if number:
        # float() of 400 digits is inf, which Protego drops: a huge delay must stay huge.
        return line if len(number.group(1)) < len(_MAX_DELAY) else f"Crawl-delay: {_MAX_DELAY}"
    # Kept as a (void) Crawl-delay line, not dropped: a rule line ends a group of
    # User-agent lines, and dropping it would merge two groups.
    return "Crawl-delay: invalid"


def normalise_lines(text: str, token: str) -> str:
    """robots.txt text with every User-agent line reduced to ``*``, our token or a
    never-matching name, and non-ASCII-number Crawl-delay values voided."""
    out = []
    for line in text.splitlines():
        lowered = line.lstrip()[:12].lower()
        if lowered.startswith("user"):
            line = _agent_line(line, token)
        elif lowered.startswith("crawl"):
            line = _delay_line(line)
        out.append(line)
    return "\n".join(out)


def parse_robots(body: bytes, token: str) -> RobotsPolicy:
    """RobotsPolicy from the bytes of a robots.txt (2xx). Never raises."""
    text = _truncate(_strip_bom(body)).decode("utf-8", errors="replace")
    try:
        parser = Protego.parse(normalise_lines(text, token))
    except Exception as exc:  # noqa: BLE001 — a third-party parser on remote bytes: cost one host, not the run
        log.warning("robots.txt not parsed (%s: %s); treated as unavailable", type(exc).__name__, exc)
        return RobotsPolicy.unavailable(f"robots.txt unparseable: {type(exc).__name__}")
    return RobotsPolicy("parsed", f"{len(body)} bytes", parser, token)


_MISSING = object()


class SiteCache:
    """Per-process answers by key, each with its own lifetime; one load per key at a time
    (threads asking for a key being loaded wait for that load). ``clock`` is injectable."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES):
        self.clock = clock
        self.max_entries = max_entries
        self._entries: OrderedDict = OrderedDict()  # key -> (expires, value)
        self._locks: dict = {}
        self._lock = threading.Lock()

    def _fresh(self, key) -> Any:
        found = self._entries.get(key)
        if found is None or found[0] <= self.clock():
            return _MISSING
        self._entries.move_to_end(key)
        return found[1]

    def get(self, key, load: Callable[[], tuple[Any, float]]) -> Any:
        """The cached value of ``key``, or ``load()``'s (value, lifetime in seconds), stored."""
        with self._lock:
            value = self._fresh(key)
            if value is not _MISSING:
                return value
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                value = self._fresh(key)
            if value is not _MISSING:
                return value
            value, ttl = load()
            with self._lock:
                self._entries[key] = (self.clock() + ttl, value)
                self._entries.move_to_end(key)
                while len(self._entries) > self.max_entries:
                    old, _ = self._entries.popitem(last=False)
                    self._locks.pop(old, None)
            return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._locks.clear()


class SlowHosts:
    """Hosts that asked us to stay away longer than we wait, until when, and why."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = MAX_ENTRIES):
        self.clock = clock
        self.max_entries = max_entries
        self._until: OrderedDict = OrderedDict()  # host -> (until, detail)
        self._lock = threading.Lock()

    def mark(self, host: str, seconds: float, detail: str) -> None:
        with self._lock:
            self._until[host] = (self.clock() + seconds, detail[:300])
            self._until.move_to_end(host)
            while len(self._until) > self.max_entries:
                self._until.popitem(last=False)

    def reason(self, host: str) -> Optional[str]:
        """Why the host is still too slow, or None."""
        with self._lock:
            found = self._until.get(host)
            if found is None:
                return None
            if found[0] <= self.clock():
                del self._until[host]
                return None
            return found[1]

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


CACHE = SiteCache()
SLOW_HOSTS = SlowHosts()


def clear_caches() -> None:
    """Forget every site answer and slow-host mark of this process (tests; a new run)."""
    CACHE.clear()
    SLOW_HOSTS.clear()
