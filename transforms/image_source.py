"""Which URL an ``<img>`` names: lazy-load attributes, srcset and ``<picture>`` choice,
``<noscript>`` twins, URL resolution and tracking pixels (no Beam import).

Input: lxml ``<img>`` elements of a parsed page, the page's base URL and the target size
(``resize.image_size``). Output: the URL to fetch and where it came from (``Source``),
the ``<noscript>`` copies that repeat another image, absolute http(s) URLs, and why an
image is a tracking pixel. Nothing is dropped here: ExtractAltText turns the answers into
pairs and rejections (transforms/extract_alt_text.py describes the rules).

Resolution never raises: a URL that does not parse (``http://[::1``), has a bad port or no
host, or is longer than ``max_chars`` (transforms/url_guard.py) resolves to "" (the caller's
``extract.bad_url``). A srcset candidate whose URL does not parse is left out of the choice,
like one with an invalid descriptor, so that it cannot hide the image's other sources.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Optional
from transforms.html_text import int_attr
from transforms.srcset import Candidate, choose_candidate, parse_srcset, with_src
from transforms.url_guard import MAX_URL_CHARS, join, parses, too_long, url_problem

_C0_OR_SPACE = "".join(map(chr, range(33)))
LAZY_SRC = ("data-lazy-src", "data-src", "data-original")
SRCSET_ATTRS = ("data-lazy-srcset", "data-srcset", "srcset")
# <source type> values we decode (transforms/imaging.py via Pillow); absent type = any.
DECODED_TYPES = frozenset({"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "image/gif",
                           "image/webp", "image/bmp", "image/tiff"})


@dataclass(frozen=True)
class Source:
    """The URL chosen for one <img> and where it came from."""

    url: str
    origin: str  # "src", "data-src", "srcset 800w", "picture 2x", ...


def lazy_or_src(img) -> Source:
    attrib = img.attrib
    for attr in LAZY_SRC:
        value = (attrib.get(attr) or "").strip()
        if value and not value.startswith("data:"):
            return Source(value, attr)
    return Source((attrib.get("src") or "").strip(), "src")


def _usable(cands: list[Candidate]) -> list[Candidate]:
    """Candidates worth choosing: not inline, and URLs that parse (a bad IPv6 literal or port in
    one candidate must not hide the image's other sources)."""
    return [c for c in cands if not c.url.startswith("data:") and parses(c.url)]


def img_candidates(img, src: str) -> list[Candidate]:
    for attr in SRCSET_ATTRS:
        cands = _usable(parse_srcset(img.get(attr)))
        if cands:
            return with_src(cands, src)
    return []


def _picture_candidates(img) -> list[Candidate]:
    """Candidates of the enclosing <picture>'s <source> elements of a type we decode."""
    picture = next((a for a in img.iterancestors("picture")), None)
    if picture is None:
        return []
    out = []
    for source in picture.iter("source"):
        mime = (source.get("type") or "").split(";")[0].strip().lower()
        if mime and mime not in DECODED_TYPES:
            continue
        for attr in SRCSET_ATTRS:
            cands = _usable(parse_srcset(source.get(attr)))
            if cands:
                out.extend(cands)
                break
    return out


def image_source(img, target_size: int, in_picture: bool = True) -> Source:
    """The URL to fetch for an <img> (as written; resolved against the base later).
    ``in_picture=False`` says no <picture> encloses it (skips the ancestor walk)."""
    plain = lazy_or_src(img)
    attrib = img.attrib
    if not in_picture and "srcset" not in attrib and "data-srcset" not in attrib and "data-lazy-srcset" not in attrib:
        return plain  # the common case: no srcset anywhere
    own = img_candidates(img, "" if plain.url.startswith("data:") else plain.url)
    pictured = _picture_candidates(img) if in_picture else []
    chosen = choose_candidate(pictured + own, target_size, int_attr(img.get("width")))
    if chosen is None:
        return plain
    if chosen.url == plain.url and len(pictured + own) == 1:
        return plain
    return Source(chosen.url, f"{'picture' if chosen in pictured else 'srcset'} {chosen.descriptor}")



def in_noscript(img) -> bool:
    return any(True for _ in img.iterancestors("noscript"))


def _is_lazy(img) -> bool:
    """A lazy-load placeholder: the real URL waits in a data-* attribute for a script."""
    return (any(img.get(a) for a in (*LAZY_SRC, "data-lazy-srcset", "data-srcset"))
            or (img.get("src") or "").strip().startswith("data:"))


def _lazy_image_before(noscript):
    """The lazy <img> (or <picture>'s) right before a <noscript>, comments skipped; else None."""
    before = noscript.getprevious()
    while before is not None and not isinstance(before.tag, str):
        before = before.getprevious()
    if before is not None and before.tag == "picture":
        before = next(before.iter("img"), None)
    return before if before is not None and before.tag == "img" and _is_lazy(before) else None


def noscript_twins(imgs: list, base: str, target_size: int) -> tuple[set, dict]:
    """(<img> in <noscript> that repeat another image, {image: its noscript twin})."""
    seen_urls = set()
    for img in imgs:
        if not in_noscript(img):
            urls = [image_source(img, target_size).url, lazy_or_src(img).url, (img.get("src") or "").strip()]
            urls += [c.url for c in img_candidates(img, "")]
            seen_urls.update(join(base, u) for u in urls if u)
    twins, lender = set(), {}
    for img in imgs:
        if not in_noscript(img):
            continue
        lazy = _lazy_image_before(next(img.iterancestors("noscript")))
        if lazy is not None or join(base, image_source(img, target_size).url) in seen_urls:
            twins.add(img)
            if lazy is not None:
                lender[lazy] = img
    return twins, lender


@functools.lru_cache(maxsize=16)
def _tracker_re(patterns: tuple) -> Optional[re.Pattern]:
    return re.compile("|".join(re.escape(p.lower()) for p in patterns)) if patterns else None


def is_tracker(url: str, width: Optional[int], height: Optional[int], max_side: int, patterns: tuple) -> str:
    """Why an image is a tracking pixel ("" when it is not): a declared side at or below
    ``max_side``, or a URL containing one of ``patterns`` (any case)."""
    for side, value in (("width", width), ("height", height)):
        if value is not None and value <= max_side:
            return f"declared {side} {value}"
    found = _tracker_re(patterns)
    match = found.search(url.lower()) if found is not None else None
    return f"matches {match.group(0)!r}" if match else ""



@functools.lru_cache(maxsize=65536)
def join_url(base_dir: str, src: str, max_chars: int = MAX_URL_CHARS) -> str:
    """The absolute http(s) URL of ``src`` or "" (also for one that does not parse, has a bad
    port or no host, or is over ``max_chars``). Cached: a site's pages share their directory
    and their images (icons, navigation), and urljoin is the costliest step per image."""
    absolute = join(base_dir, src) if src else ""
    return absolute if absolute.startswith(("http://", "https://")) and not url_problem(absolute, max_chars) else ""


def _plain_path(src: str) -> bool:
    """A plain relative path ("images/a.png"): urljoin would append it to the directory as is.
    (Whitespace and control characters go through urljoin, which strips or removes them.)"""
    return (src[0] not in "?#;./\\" and ":" not in src and "./" not in src and "\\" not in src
            and " " not in src and "\t" not in src and "\n" not in src and "\r" not in src)


def resolve(base: str, base_dir: str, src: str, max_chars: int = MAX_URL_CHARS) -> str:
    """The absolute http(s) URL of ``src`` on a page (``base_dir``: the base's directory, or ""
    when it is not http(s)); "" when there is none. ``base_dir`` must parse (it does when it
    was joined from a base that does)."""
    src = src.lstrip(_C0_OR_SPACE)  # as urlsplit does; nothing left is no source (not the page itself)
    if not src:
        return ""
    if _plain_path(src):
        url = base_dir + src if base_dir else ""
        return "" if too_long(url, max_chars) else url
    return join_url(base if _needs_whole_base(src) else base_dir, src, max_chars)


def _needs_whole_base(src: str) -> bool:
    """Whether ``src`` resolves against more than the base's directory: "?x", "#x", and forms
    with no host and no path ("http:", "http://", "http:?x": the base itself, as "" is).
    Relative paths and URLs with a host need only the directory (a cache key shared by a
    site's pages)."""
    if src[0] in "?#;":
        return True
    slashes = src.find("//")
    if slashes < 0:
        return ":" in src
    return slashes + 2 == len(src) or src[slashes + 2] in "/?#"
