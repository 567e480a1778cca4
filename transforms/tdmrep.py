"""TDMRep (W3C TDM Reservation Protocol, community group final report): what a site reserves.

Input: the bytes of an origin's ``/.well-known/tdmrep.json``, or a response's
``tdm-reservation`` header values. Output: ``TdmRules`` (which rule, if any,
reserves text-and-data-mining rights on a URL) and ``header_reserved``. The client
(transforms/http_client.py) turns a reservation into the ``tdm_reserved`` failure:
``fetch.tdm_reserved`` for images, ``crawl.tdm_reserved`` for pages.

tdmrep.json is a JSON array of rules ``{"location": pattern, "tdm-reservation":
0|1, "tdm-policy": url?}``. As the spec says:
- the first rule (in file order) whose location matches the URL decides ("the most
  specific match is the first in sequence"); no match = unset (not reserved);
- a tdm-reservation other than 0 or 1 is a protocol error: unset (we also read the
  string ``"1"``/``"0"``, a common slip, rather than ignore an opt-out);
- locations use robots.txt pattern syntax, matched case-sensitively against the
  path and query: ``*`` is any run of characters, a final ``$`` anchors the end,
  the match is a prefix match otherwise; percent-escapes of unreserved characters
  are decoded before comparing, a literal ``$`` or ``*`` is written ``%24``/``%2A``;
- a file that is missing, not 2xx, over ``TDMREP_MAX_BYTES``, not JSON or not an
  array means the origin does not use the protocol: nothing reserved (logged at
  debug). A rule without a string location or without tdm-reservation is skipped.

The header (``tdm-reservation: 1``) is decided before the body is read. The spec
lets a header ``0`` override a file's ``1``; we refuse a URL the file reserves
before sending its request, so that override is not seen (the cautious side).
tdmrep.json is fetched once per origin per process and cached like robots.txt
(transforms/robots.py, same lifetime).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Iterable, Optional
from urllib.parse import urlsplit

from transforms.robots import UNAVAILABLE_TTL_S

log = logging.getLogger(__name__)

TDMREP_PATH = "/.well-known/tdmrep.json"
TDMREP_MAX_BYTES = 64 * 1024
MAX_RULES = 2_000

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
# Printable ASCII kept as written; "%", "$", "*" and the rest are escaped (see _normalise).
_VERBATIM = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"%", "$", "*", "#"}


def _normalise(text: str, pattern: bool) -> str:
    """Percent-encoding normalised for comparison: unreserved escapes decoded, other
    escapes upper-cased, non-ASCII and special characters escaped. In a pattern ``*``
    stays a wildcard (a final ``$`` is handled by the caller)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "%" and i + 2 < n and text[i + 1] in _HEX and text[i + 2] in _HEX:
            decoded = chr(int(text[i + 1:i + 3], 16))
            out.append(decoded if decoded in _UNRESERVED else "%" + text[i + 1:i + 3].upper())
            i += 3
            continue
        if ch == "*" and pattern:
            out.append("*")
        elif ch in _VERBATIM:
            out.append(ch)
        else:
            out.extend(f"%{b:02X}" for b in ch.encode("utf-8", errors="replace"))
        i += 1
    return "".join(out)


def _url_target(url: str) -> str:
    """The normalised path (and query) of a URL, what locations are matched against."""
    parts = urlsplit(url.partition("#")[0])
    target = parts.path or "/"
    if parts.query or url.partition("#")[0].endswith("?"):
        target += "?" + parts.query
    return _normalise(target, pattern=False)


def _location_pattern(location: str) -> Optional[tuple[tuple[str, ...], bool]]:
    """(literal parts between ``*``, anchored at the end) of a rule's location, or None."""
    location = location.strip()
    if location.startswith(("http://", "https://")):  # a full URL written by mistake: its path
        location = urlsplit(location).path or "/"
    if not location:
        return None
    anchored = location.endswith("$")
    if anchored:
        location = location[:-1]
    if not location.startswith(("/", "*")):
        location = "/" + location
    body = _normalise(location, pattern=True)
    return tuple(re.sub(r"\*+", "*", body).split("*")), anchored


def _matches(parts: tuple[str, ...], anchored: bool, target: str) -> bool:
    """Glob match in linear time: each literal part at its earliest place (greedy is exact for ``*``)."""
    if not target.startswith(parts[0]):
        return False
    if len(parts) == 1:
        return target == parts[0] if anchored else True
    pos = len(parts[0])
    for part in parts[1:-1]:
        found = target.find(part, pos)
        if found < 0:
            return False
        pos = found + len(part)
    last = parts[-1]
    if anchored:
        return len(target) - len(last) >= pos and target.endswith(last)
    return target.find(last, pos) >= 0


@dataclass(frozen=True)
class TdmRule:
    location: str
    parts: tuple
    anchored: bool
    reserved: Optional[bool]  # None: a protocol error in tdm-reservation, read as unset
    policy: str = ""

    def matches(self, url: str) -> bool:
        return _matches(self.parts, self.anchored, _url_target(url))


def _reservation(value) -> Optional[bool]:
    if isinstance(value, bool):  # JSON true/false are not the integers the spec asks for
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip() in ("0", "1")):
        number = int(value) if isinstance(value, int) else int(value.strip())
        return {0: False, 1: True}.get(number)
    return None


def _rule(item) -> Optional[TdmRule]:
    if not isinstance(item, dict) or not isinstance(item.get("location"), str) or "tdm-reservation" not in item:
        return None
    pattern = _location_pattern(item["location"])
    if pattern is None:
        return None
    policy = item.get("tdm-policy")
    return TdmRule(item["location"][:200], pattern[0], pattern[1], _reservation(item["tdm-reservation"]),
                   policy[:300] if isinstance(policy, str) else "")


@dataclass(frozen=True)
class TdmRules:
    """The rules of one origin's tdmrep.json, in file order (empty: nothing reserved)."""

    rules: tuple = ()
    detail: str = ""

    def reserving_rule(self, url: str) -> Optional[TdmRule]:
        """The rule reserving TDM rights on ``url``: the first matching rule, if it says 1."""
        try:
            target = _url_target(url)
        except ValueError:  # a URL urlsplit refuses: the client rejects it before this
            return None
        for rule in self.rules:
            if _matches(rule.parts, rule.anchored, target):
                return rule if rule.reserved else None
        return None


def parse_tdmrep(body: bytes) -> TdmRules:
    """TdmRules from the bytes of a tdmrep.json; any trouble = no rules. Never raises."""
    if len(body) > TDMREP_MAX_BYTES:
        return _none(f"tdmrep.json over {TDMREP_MAX_BYTES} bytes")
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        return _none(f"tdmrep.json not JSON: {type(exc).__name__}")
    if not isinstance(data, list):
        return _none(f"tdmrep.json is a {type(data).__name__}, not an array")
    rules = tuple(r for r in map(_rule, data[:MAX_RULES]) if r is not None)
    return TdmRules(rules, f"{len(rules)} rules")


def _none(detail: str) -> TdmRules:
    log.debug("%s: no TDM reservation read", detail)
    return TdmRules((), detail)


def rules_from(result, cache_s: float, retry_s: float = UNAVAILABLE_TTL_S) -> tuple[TdmRules, float]:
    """(rules, seconds to trust them) from the client's ``FetchResult`` of tdmrep.json: a 4xx
    is an answer for ``cache_s``; a 5xx, 429 or network failure is asked again after ``retry_s``."""
    if result.ok:
        return parse_tdmrep(result.data), cache_s
    answered = 400 <= result.status < 500 and result.status != 429
    return _none(f"tdmrep.json {result.failure} {result.status or ''}".strip()), (
        cache_s if answered else min(retry_s, cache_s))


def header_reserved(values: Iterable[str]) -> bool:
    """True when a ``tdm-reservation`` header says 1 (several headers: any of them)."""
    for value in values:
        for item in (value or "").split(","):
            if item.strip() == "1":
                return True
    return False
