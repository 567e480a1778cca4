"""One canonical form of a URL, for the crawl, URL dedupe and the blocklists (no Beam import).

Input: URL text (crawl links and seeds, extracted image URLs, WARC target URIs, blocklist
entries). Output: ``canonical_url`` — the URL in one canonical form — and ``canonical_host``.
Nothing is dropped and nothing raises: a URL that does not parse (a bad IPv6 literal) or
whose port does not is returned as written, minus its fragment, for ``fetch.bad_url`` /
``extract.bad_url`` to refuse; a URL without a host likewise.

Two URLs that name the same resource the same way on the wire get the same text:

- scheme and host lower case; host IDNA-encoded (UTS #46, as requests sends it; the standard
  library's IDNA 2003 codec when the idna package refuses a label, e.g. ``a_b``); no trailing
  dot; an IPv6 literal compressed (RFC 5952) in brackets;
- the default port (80 for http, 443 for https) dropped, any other port kept;
- userinfo (``user:password@``) dropped: browsers block credentials in sub-resource URLs, and
  a password must not land in a published dataset's ``url`` column;
- the fragment dropped (never sent);
- percent-encoding as requests puts it on the wire (``requote_uri``): triplets of unreserved
  characters decoded (``%7E`` -> ``~``), other triplets upper case, and every character
  outside the unreserved set and ``!$&'()*+,/:;=?@[]`` encoded as UTF-8 (spaces, ``"<>\\^`{|}``,
  controls, non-ASCII); a ``%`` that starts no triplet becomes ``%25``; a lone surrogate is
  left as written (it cannot be sent: url_guard refuses it);
- dot segments resolved (RFC 3986 §5.2.4, ``%2E`` counted as a dot) but empty segments kept
  (``//``: servers may treat them as distinct paths); an empty path is ``/``.

The query keeps its order and its blank values: ``?b=2&a=1`` and ``?a=1&b=2`` may be two
resources (servers that read repeated arguments in order, signed URLs), and the crawl fetches
the canonical URL, so it must name what the page named. That is why this is not
``w3lib.url.canonicalize_url``, which sorts the query, rewrites ``%20`` as ``+`` and ``?x`` as
``?x=``, keeps userinfo and default ports and raises on a bad port or IPv6 literal; it is also
~10x slower on the crawl's links (bench/url_canonical.py prints the figures).

Hot path: every crawl link and every extracted image URL (the URL-dedupe key). A URL already
in canonical form in the common shape (lower-case host, no userinfo, a path of safe characters
and upper-case non-unreserved triplets, no dot segment) is recognised by one regular expression
and returned as is; tests/transforms/test_url_canonical.py checks that shortcut against the full
path on arbitrary text.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from urllib.parse import urlsplit, urlunsplit

import idna

_C0_OR_SPACE = "".join(map(chr, range(33)))  # what browsers strip (str.strip would also take U+2028, U+3000)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A percent triplet, or one character requests would percent-encode (everything but the unreserved
# set and requote_uri's "!$&'()*+,/:;=?@[]"; "#" cannot occur after urlsplit, "%" alone can).
_PCT_OR_UNSAFE = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,/:;=?@\[\]]")
_SURROGATES = re.compile("[\ud800-\udfff]")
# Canonical already (the shortcut): http(s), a lower-case host of letters, digits, dots and
# hyphens not ending in a dot, maybe a port, then a path and query of kept characters and "%";
# canonical_url then checks the port, the triplets (upper case, none unreserved) and dot segments.
_CANONICAL = re.compile(r"(https?)://[a-z0-9.-]*[a-z0-9-](?::([0-9]{1,5}))?/[A-Za-z0-9\-._~!$&'()*+,/:;=?@%]*")
_BAD_TRIPLET = re.compile(r"%(?![0-9A-F]{2})|%(?:[46][1-9A-F]|[57][0-9A]|3[0-9]|2[DE]|5F|7E)")


def canonical_url(url: str) -> str:
    """The canonical form of ``url`` (module docstring); never raises, idempotent."""
    url = url.strip(_C0_OR_SPACE)
    fast = _CANONICAL.fullmatch(url)
    if (fast is not None and "/." not in url and url[-1] != "?"  # urlunsplit drops an empty query
            and ("%" not in url or _BAD_TRIPLET.search(url) is None)):
        port = fast.group(2)
        if port is None or (port[0] != "0" and int(port) <= 65535 and int(port) != _DEFAULT_PORTS[fast.group(1)]):
            return url
    return _canonical_slow(url)


def _canonical_slow(url: str) -> str:
    """``canonical_url`` without the shortcut (stripped input)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a bad IPv6 literal or port: as written, for the fetch stage to refuse
        return url.split("#", 1)[0].rstrip(_C0_OR_SPACE)
    if not parts.hostname:
        return url.split("#", 1)[0].rstrip(_C0_OR_SPACE)
    scheme = parts.scheme.lower()
    host = canonical_host(parts.hostname)
    bracketed = ":" in host or "[" in parts.netloc.rpartition("@")[2]  # IPv6 or IPvFuture literal
    netloc = f"[{host}]" if bracketed else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc = f"{netloc}:{port}"
    path = remove_dot_segments(_requote(parts.path) or "/")
    return urlunsplit((scheme, netloc, path, _requote(parts.query), ""))


def canonical_host(host: str) -> str:
    """Lower case, IDNA (punycode) for a non-ASCII name, no trailing dot, IPv6 compressed (no
    brackets, as ``urlsplit(...).hostname`` gives it). A name IDNA refuses is kept, lower-cased."""
    host = host.lower()
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host).compressed
        except ValueError:
            return host
    host = host.rstrip(".") or host  # before IDNA, which refuses an empty last label
    if not host.isascii():
        host = _idna(host).rstrip(".") or host
    return host


@functools.lru_cache(maxsize=65536)  # ~50 us a name; a site's images share their host
def _idna(host: str) -> str:
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def _requote_one(match: re.Match) -> str:
    text = match.group()
    if len(text) == 3:
        char = chr(int(text[1:], 16))
        return char if char in _UNRESERVED else text.upper()
    if _SURROGATES.match(text):
        return text
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def _requote(text: str) -> str:
    return _PCT_OR_UNSAFE.sub(_requote_one, text) if text else text


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4: resolve ``.`` and ``..`` but keep empty segments (``//``), which
    servers may treat as distinct paths; the result starts with ``/``."""
    if "/." not in path and not path.startswith("."):
        return path if path.startswith("/") else "/" + path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result
