"""Licence capture: the licence a page declares for each of its images (no Beam import).

Input: a parsed page (lxml document), its lower-cased bytes and its base URL.
Output: a ``PageLicenses`` that names, for one ``<img>``, an SPDX-style lower-case id
(``cc-by-4.0``, ``cc-by-sa-3.0``, ``cc-by-2.0-de`` for a ported licence, ``cc0-1.0``,
``cc-pdm-1.0`` for the Public Domain Mark, ``cc-pddc``, ``mit``, ``apache-2.0``,
``odbl-1.0``, ``odc-by-1.0``, ``pddl-1.0``, any ``spdx.org/licenses/<ID>``), ``other``
for a licence the page states that we cannot map, or ``unknown`` when it says nothing.
Nothing is dropped here (filters/license_rules.py applies ``license.allow``).

Sources, most specific first:

1. a JSON-LD (``<script type="application/ld+json">``) ``ImageObject`` whose
   ``contentUrl`` or ``url`` names the image, with a ``license`` (a URL or name, an
   object with ``@id``/``url``/``name``, or a list): that image only. ImageObjects are
   found anywhere in the document (``@graph`` arrays, ``Article.image``, ...);
2. a link inside the image's ``<figure>``: a ``rel="license"`` link (``<a>``, ``<link>``,
   ``<area>``; rel is a token list) first, else a link to a Creative Commons licence
   (attribution lines rarely carry ``rel``): that figure's images;
3. the page: the first ``rel="license"`` link outside any figure, else the ``license``
   of a top-level JSON-LD item that is not an ImageObject (``WebPage``, ``Article``),
   else a Creative Commons link outside figures when all such links name one licence.

Hostile pages cost bounded work and never raise: at most ``MAX_JSONLD_SCRIPTS``
JSON-LD scripts of ``MAX_JSONLD_BYTES`` each (and ``MAX_JSONLD_TOTAL`` together),
``MAX_JSONLD_NODES`` nodes walked to depth ``MAX_JSONLD_DEPTH`` (iteratively; a nesting
json cannot parse is skipped), ``MAX_LINKS`` licence links normalised.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from transforms.url_guard import join

log = logging.getLogger(__name__)

UNKNOWN = "unknown"
OTHER = "other"

MAX_VALUE_CHARS = 2048
MAX_JSONLD_SCRIPTS = 32
MAX_JSONLD_BYTES = 512 * 1024
MAX_JSONLD_TOTAL = 2 * 1024 * 1024
MAX_JSONLD_NODES = 20000
MAX_JSONLD_DEPTH = 24
MAX_IMAGE_OBJECTS = 2000
MAX_LINKS = 256

_CC_HOSTS = frozenset({"creativecommons.org", "www.creativecommons.org"})
_CC_TERMS = {"by": "by", "by-sa": "by-sa", "by-nd": "by-nd", "by-nc": "by-nc", "by-nc-sa": "by-nc-sa",
             "by-nc-nd": "by-nc-nd", "by-nd-nc": "by-nc-nd"}  # by-nd-nc: the 1.0 name of by-nc-nd
_CC_VERSIONS = frozenset({"1.0", "2.0", "2.1", "2.5", "3.0", "4.0"})
_CC_PORT = re.compile(r"[a-z]{2,3}(?:[-_][a-z]{2})?|scotland")
_CC_SUFFIX = re.compile(r"(?:deed|legalcode)(?:\.[a-z_-]{1,16})?|rdf|index\.html?")
_SPDX_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}")
_ODC = {"odbl": "odbl", "by": "odc-by", "pddl": "pddl"}
_OSI = {"mit": "mit", "apache-2.0": "apache-2.0", "bsd-2-clause": "bsd-2-clause", "bsd-3-clause": "bsd-3-clause"}
# Names as pages write them in JSON-LD or rel=license text: "CC BY-SA 4.0", "CC-BY-4.0", "CC0 1.0".
_CC_NAME = re.compile(r"\bcc[ _-]?(by(?:[ _-](?:nc|sa|nd)){0,2})[ _-]?([1-4]\.[015])\b")
_CC_SPDX = re.compile(r"cc-(by(?:-(?:nc|sa|nd)){0,2})-([1-4]\.[015])(-[a-z]{2,8})?")
_CC0_NAME = re.compile(r"\bcc[ _-]?(?:0|zero)\b")
_PDM_NAME = re.compile(r"\bpublic domain mark\b")
_KNOWN_NAMES = {"mit": "mit", "apache-2.0": "apache-2.0", "cc-pddc": "cc-pddc", "odbl-1.0": "odbl-1.0",
                "odc-by-1.0": "odc-by-1.0", "pddl-1.0": "pddl-1.0", "cc-pdm-1.0": "cc-pdm-1.0",
                "bsd-2-clause": "bsd-2-clause", "bsd-3-clause": "bsd-3-clause"}


def _cc_path(segments: list[str]) -> str:
    """The id of a creativecommons.org path (lower-cased segments, empty ones removed)."""
    if len(segments) >= 3 and segments[:2] in (["publicdomain", "zero"], ["publicdomain", "mark"]):
        if segments[2] == "1.0" and all(_CC_SUFFIX.fullmatch(s) for s in segments[3:]):
            return "cc0-1.0" if segments[1] == "zero" else "cc-pdm-1.0"
        return OTHER
    if segments[:2] == ["licenses", "publicdomain"] and len(segments) == 2:
        return "cc-pddc"  # the old Public Domain Dedication and Certification
    if len(segments) < 3 or segments[0] != "licenses" or segments[1] not in _CC_TERMS \
            or segments[2] not in _CC_VERSIONS:
        return OTHER
    terms, version, rest = _CC_TERMS[segments[1]], segments[2], segments[3:]
    port = ""
    if rest and not _CC_SUFFIX.fullmatch(rest[0]) and _CC_PORT.fullmatch(rest[0]):
        port, rest = "-" + rest[0].replace("_", "-"), rest[1:]
    if not all(_CC_SUFFIX.fullmatch(s) for s in rest):
        return OTHER
    return f"cc-{terms}-{version}{port}"


def _url_id(url: str) -> str:
    """The id of an absolute licence URL, or OTHER."""
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
    except ValueError:  # a bad IPv6 literal or port
        return OTHER
    if parts.scheme not in ("http", "https"):
        return OTHER
    segments = [s for s in parts.path.lower().split("/") if s]
    if host in _CC_HOSTS:
        return _cc_path(segments)
    if host in ("opendatacommons.org", "www.opendatacommons.org") and len(segments) >= 3 \
            and segments[0] == "licenses" and segments[1] in _ODC and segments[2] == "1.0":
        return f"{_ODC[segments[1]]}-1.0"
    if host in ("opensource.org", "www.opensource.org") and len(segments) == 2 and segments[0] == "licenses":
        return _OSI.get(segments[1].removesuffix(".php").removesuffix(".html"), OTHER)
    if host in ("apache.org", "www.apache.org") and segments[:1] == ["licenses"] and len(segments) == 2 \
            and segments[1].removesuffix(".html").removesuffix(".txt") == "license-2.0":
        return "apache-2.0"
    if host in ("spdx.org", "www.spdx.org") and len(segments) == 2 and segments[0] == "licenses":
        spdx = segments[1].removesuffix(".html").removesuffix(".json")
        return spdx if _SPDX_ID.fullmatch(spdx) else OTHER
    return OTHER


def _name_id(text: str) -> str:
    """The id of a licence written as a name ("CC BY-SA 4.0", "CC0", "MIT"), or OTHER."""
    low = " ".join(text.lower().split())
    if low in _KNOWN_NAMES:
        return _KNOWN_NAMES[low]
    spdx = _CC_SPDX.fullmatch(low)  # an id as SPDX writes it, ports included ("cc-by-3.0-de")
    if spdx and spdx.group(1) in _CC_TERMS:
        return f"cc-{_CC_TERMS[spdx.group(1)]}-{spdx.group(2)}{spdx.group(3) or ''}"
    found = _CC_NAME.search(low)
    if found:
        terms = re.sub(r"[ _-]+", "-", found.group(1))
        if terms in _CC_TERMS:
            return f"cc-{_CC_TERMS[terms]}-{found.group(2)}"
    if _CC0_NAME.search(low):
        return "cc0-1.0"
    if _PDM_NAME.search(low):
        return "cc-pdm-1.0"
    return OTHER


def normalise_license(value: object, base: str = "") -> str:
    """The SPDX-style id of a licence URL or name; OTHER when stated but unmappable; "" when empty.

    ``value`` may be anything a page gives (JSON-LD holds numbers, lists); relative
    URLs are resolved against ``base``. Never raises."""
    if not isinstance(value, str):
        return OTHER if value not in (None, "", [], {}) else ""
    text = value.strip()
    if not text:
        return ""
    if len(text) > MAX_VALUE_CHARS:
        return OTHER
    low = text.lower()
    if low.startswith(("creativecommons.org/", "www.creativecommons.org/")):
        text = "https://" + text
    elif "://" not in low and not low.startswith("//") and (" " in text or not base or "/" not in text):
        return _name_id(text)  # a name, not a path: "CC BY 4.0", "MIT"
    absolute = join(base or "https://invalid.invalid/", text)
    return _url_id(absolute) if absolute else OTHER


def absolute_url(base: str, url: str) -> str:
    """``url`` resolved against ``base``, without its fragment; "" when it cannot be parsed."""
    return join(base, url.strip()).split("#", 1)[0]


def _rel_tokens(el) -> list[str]:
    return (el.get("rel") or "").lower().split()


_MAX_ANCESTORS = 256  # a <figure> further up than this is not looked for (deep hostile trees)


def _figure_of(el):
    for n, anc in enumerate(el.iterancestors()):
        if n >= _MAX_ANCESTORS:
            return None
        if anc.tag == "figure":
            return anc
    return None


@dataclass
class PageLicenses:
    """What one page declares: a page-level id, ids per <figure>, ids per image URL (JSON-LD)."""

    page: str = ""
    figures: dict = field(default_factory=dict)  # <figure> element -> id
    images: dict = field(default_factory=dict)  # absolute image URL without fragment -> id

    @property
    def empty(self) -> bool:
        return not (self.page or self.figures or self.images)

    def for_image(self, img, urls: tuple = ()) -> str:
        """The id for ``img`` whose URLs (the chosen source, the plain src) are ``urls``."""
        for url in urls:
            found = self.images.get(url.split("#", 1)[0]) if url else None
            if found:
                return found
        if self.figures:
            for n, anc in enumerate(img.iterancestors()):
                if n >= _MAX_ANCESTORS:
                    break
                if anc.tag == "figure" and anc in self.figures:
                    return self.figures[anc]
        return self.page or UNKNOWN


def may_declare_license(lowered: bytes) -> bool:
    """Cheap pre-check on the lower-cased page bytes: can ``page_licenses`` find anything?"""
    return b"license" in lowered or b"creativecommons.org" in lowered


def _is_jsonld(script) -> bool:
    return (script.get("type") or "").split(";", 1)[0].strip().lower() == "application/ld+json"


def _link_license(el, base: str) -> tuple[str, bool]:
    """(id, from rel=license) of an <a>/<link>/<area>; ("", False) when it names no licence."""
    href = el.get("href")
    if not href:
        return "", False
    rel = any(t in ("license", "cc:license") for t in _rel_tokens(el))
    if not rel and "creativecommons.org" not in href.lower():
        return "", False
    lic = normalise_license(href, base)
    if not rel and lic == OTHER:  # a link to creativecommons.org that is no licence (/about, /donate)
        return "", False
    return lic, rel


def page_licenses(doc, base: str) -> PageLicenses:
    """Every licence statement of a page, scoped (see the module docstring). Never raises."""
    found = PageLicenses()
    figures: dict = {}  # <figure> -> (id, from rel=license)
    rel_page, cc_page, scripts, budget = "", [], [], MAX_LINKS
    for el in doc.iter("a", "link", "area", "script"):
        if el.tag == "script":
            if len(scripts) < MAX_JSONLD_SCRIPTS and _is_jsonld(el):
                scripts.append(el)
            continue
        if budget <= 0 or not el.get("href"):
            continue
        lic, rel = _link_license(el, base)
        if not lic:
            continue
        budget -= 1
        figure = _figure_of(el)
        if figure is not None:
            prior = figures.get(figure)
            if prior is None or (rel and not prior[1]):  # rel=license beats a plain CC link
                figures[figure] = (lic, rel)
        elif rel:
            rel_page = rel_page or lic
        elif lic not in cc_page:
            cc_page.append(lic)
    found.figures = {fig: lic for fig, (lic, _rel) in figures.items()}
    jsonld_page = _read_jsonld(scripts, base, found.images)
    found.page = rel_page or jsonld_page or (cc_page[0] if len(cc_page) == 1 else "")
    return found


def _script_json(script) -> object:
    text = (script.text or "").strip()
    if text.startswith("<!--") and text.endswith("-->"):
        text = text[4:-3]
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, a number past int's digit limit, nesting too deep
        return None


def jsonld_fits(size: int, total: int) -> bool:
    """May a JSON-LD script of ``size`` characters be parsed after ``total`` others on the page?"""
    return size <= MAX_JSONLD_BYTES and total + size <= MAX_JSONLD_TOTAL


def _read_jsonld(scripts: list, base: str, images: dict) -> str:
    """Fill ``images`` from the ImageObjects of the JSON-LD scripts; return the page-level id."""
    page, total = "", 0
    for script in scripts:
        size = len(script.text or "")
        if not jsonld_fits(size, total):
            log.debug("JSON-LD script of %d characters skipped", size)
            continue
        total += size
        data = _script_json(script)
        if data is not None:
            walked = _walk_jsonld(data, base, images)
            page = page or walked
    return page


def _types(value) -> set:
    names = [value] if isinstance(value, str) else value[:16] if isinstance(value, list) else []
    return {n.rsplit("/", 1)[-1].rsplit(":", 1)[-1].strip().lower() for n in names if isinstance(n, str)}


def _strings(value) -> list[str]:
    items = value[:8] if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            item = item.get("@id") or item.get("url")
        if isinstance(item, str) and item.strip():
            out.append(item)
    return out


def _license_value(value, base: str) -> str:
    """The id of a JSON-LD ``license`` value: a string, an object (@id, url, name) or a list of them."""
    for item in (value[:8] if isinstance(value, list) else [value]):
        if isinstance(item, dict):
            item = next((item[k] for k in ("@id", "url", "name") if isinstance(item.get(k), str)), item)
        lic = normalise_license(item, base)
        if lic:
            return lic
    return ""


def _image_object(node: dict, base: str, images: dict) -> None:
    lic = _license_value(node.get("license"), base)
    if not lic:
        return
    for key in ("contentUrl", "url"):
        for url in _strings(node.get(key)):
            absolute = absolute_url(base, url)
            if absolute and len(images) < MAX_IMAGE_OBJECTS:
                images.setdefault(absolute, lic)


def _walk_jsonld(data, base: str, images: dict) -> str:
    """Walk a JSON-LD document (iteratively, bounded): ImageObjects into ``images``; the first
    ``license`` of a top-level item (the root, a root list's items, ``@graph`` items) returned."""
    page, nodes = "", 0
    stack = [(data, 0, True)]
    while stack and nodes < MAX_JSONLD_NODES:
        node, depth, top = stack.pop()
        nodes += 1
        if isinstance(node, list):
            if depth < MAX_JSONLD_DEPTH:
                stack.extend((child, depth + 1, top) for child in reversed(node[:MAX_JSONLD_NODES]))
            continue
        if not isinstance(node, dict):
            continue
        if "imageobject" in _types(node.get("@type")):
            _image_object(node, base, images)
        elif top and not page and "license" in node:
            page = _license_value(node.get("license"), base)
        if depth < MAX_JSONLD_DEPTH:
            children = [(v, depth + 1, top and k == "@graph") for k, v in node.items() if isinstance(v, (dict, list))]
            stack.extend(reversed(children))
    return page
