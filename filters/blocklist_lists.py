"""Reading the curator's blocklists: domains, URL prefixes, exact URLs, sha256 and pHash lists.

Input: a ``BlocklistSpec`` naming list files (local paths or ``gs://``, read through
Beam ``FileSystems``; ``.gz`` is decompressed by extension). Output: a ``Blocklists``
value with every entry normalised for matching (filters/blocklist.py matches).
Nothing is dropped here: an entry that cannot be understood is a ``BlocklistError``
naming the file and line, before the pipeline runs (a takedown list that silently
loses lines would let the taken-down images through).

File format, every list: one entry per line; blank lines and lines starting with
``#`` are ignored, as is anything after whitespace (so ``sha256sum`` output and
``host  # comment`` work). Domains: ``example.com`` (also matches every subdomain),
``*.example.com`` and ``.example.com`` mean the same; a URL is accepted and its host
taken. URL prefixes and URLs: absolute http(s) URLs. sha256: 64 hex digits. pHash:
16 hex digits, as in the ``phash`` column (``wit blocklist-hash IMAGE...`` prints them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence
from urllib.parse import urlsplit

from apache_beam.io.filesystems import FileSystems

from transforms.url_canonical import canonical_host
from transforms.url_canonical import canonical_url as _canonical

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX16 = re.compile(r"^[0-9a-f]{16}$")
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


class BlocklistError(ValueError):
    """A blocklist file is missing or holds an entry that is not of its kind."""


@dataclass(frozen=True)
class BlocklistSpec:
    """List files by kind (each a sequence of paths or globs-free URIs) and the pHash radius."""

    domains: Sequence[str]
    url_prefixes: Sequence[str]
    urls: Sequence[str]
    sha256: Sequence[str]
    phash: Sequence[str]
    phash_radius: int  # pipeline/specs.py: ``blocklist_spec``, from the ``blocklist`` section

    @property
    def before_download(self) -> bool:
        return bool(self.domains or self.url_prefixes or self.urls)

    @property
    def after_download(self) -> bool:
        return bool(self.sha256 or self.phash)


@dataclass(frozen=True)
class Blocklists:
    """Normalised entries, ready to match (filters/blocklist.py)."""

    domains: frozenset
    prefixes_by_host: dict  # host -> tuple of canonical prefixes
    urls: frozenset
    sha256: frozenset
    phashes: tuple  # ints
    phash_radius: int  # BlocklistSpec.phash_radius

    def sizes(self) -> dict:
        return {"domains": len(self.domains), "url_prefixes": sum(map(len, self.prefixes_by_host.values())),
                "urls": len(self.urls), "sha256": len(self.sha256), "phash": len(self.phashes)}


def normalise_host(host: str) -> str:
    """The host as the one URL canonicaliser writes it (transforms/url_canonical.py: lower case,
    IDNA, no trailing dot, IPv6 compressed without brackets); ``""`` if not a host name."""
    host = (host or "").strip().strip("[]")
    if not host:
        return ""
    host = canonical_host(host)
    if ":" in host or re.fullmatch(r"[0-9.]+", host):
        return host  # an IP literal
    return host if host.isascii() and all(_LABEL.match(label) for label in host.split(".")) else ""


def canonical_url(url: str) -> str:
    """The one canonical form (transforms/url_canonical.py: the crawl and URL dedupe use it too);
    ``""`` if not an http(s) URL with a valid host and port."""
    try:
        parts = urlsplit((url or "").strip())
        parts.port  # noqa: B018 -- raises on a port that is not a number in 0-65535
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not normalise_host(parts.hostname or ""):
        return ""
    return _canonical(url)


def host_of(url: str) -> str:
    try:
        return normalise_host(urlsplit(url or "").hostname or "")
    except ValueError:
        return ""


def read_entries(path: str) -> Iterator[tuple[int, str]]:
    """(line number, first whitespace-separated token) of each non-comment line of ``path``."""
    try:
        with FileSystems.open(path) as fh:
            text = fh.read().decode("utf-8-sig")
    except (OSError, IOError) as exc:  # FileSystems raises IOError / BeamIOError (an IOError)
        raise BlocklistError(f"cannot read blocklist {path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise BlocklistError(f"blocklist {path} is not UTF-8 text: {exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        token = line.strip().split(maxsplit=1)[0] if line.strip() else ""
        if token and not token.startswith("#"):
            yield number, token


def _domain(token: str) -> str:
    if "://" in token:
        token = urlsplit(token).hostname or ""
    return normalise_host(token.lstrip("*").lstrip("."))


def _parse(paths: Iterable[str], kind: str, parse) -> list:
    out = []
    for path in paths:
        for number, token in read_entries(path):
            value = parse(token)
            if value in ("", None):
                raise BlocklistError(f"{path}:{number}: {token[:80]!r} is not a valid {kind} entry")
            out.append(value)
    return out


def _hex(pattern: re.Pattern):
    return lambda token: token.lower() if pattern.match(token.lower()) else ""


def load_blocklists(spec: BlocklistSpec) -> Blocklists:
    """Read and normalise every list of ``spec``; BlocklistError on a bad file or entry."""
    if spec.phash_radius < 0 or spec.phash_radius > 32:
        raise BlocklistError(f"blocklist.phash_radius must be in [0, 32], got {spec.phash_radius}")
    prefixes: dict = {}
    for prefix in _parse(spec.url_prefixes, "URL prefix", canonical_url):
        prefixes.setdefault(host_of(prefix), set()).add(prefix)
    phashes = _parse(spec.phash, "pHash (16 hex digits)", _hex(_HEX16))
    return Blocklists(
        domains=frozenset(_parse(spec.domains, "domain", _domain)),
        prefixes_by_host={host: tuple(sorted(p)) for host, p in prefixes.items()},
        urls=frozenset(_parse(spec.urls, "URL", canonical_url)),
        sha256=frozenset(_parse(spec.sha256, "sha256 (64 hex digits)", _hex(_HEX64))),
        phashes=tuple(sorted({int(h, 16) for h in phashes})),
        phash_radius=spec.phash_radius,
    )
