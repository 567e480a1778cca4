"""HTML bytes to a parsed document: charset detection, a tolerant parse, text helpers.

Input: HTML bytes and the HTTP Content-Type. Output: decoded text, an lxml
document (or None for bytes no parser makes a document of) and small cleaners.
Nothing is dropped here. Used by ExtractAltText, the crawl's link extraction
and bench/extract.py, so all parse the same way.

Charset order follows the HTML standard's sniffing: BOM, then the HTTP header's
charset, then a ``<meta charset>``/``http-equiv`` declaration in the first bytes,
then a guess. bs4's UnicodeDammit does the declared and sniffed steps (the
card's tool for this); before its statistical guess, which is slow, bytes that
are valid UTF-8 are taken as UTF-8 (what browsers do for an undeclared page), and
the guess for other undeclared pages is made on their text without the markup.
A declared label Python does not decode text with, or decodes with a codec that is no
web encoding ("undefined" always raises, "punycode" raises on ordinary bytes, the escape
codecs read backslashes), counts as undeclared, as browsers ignore labels they do not know.

Deep pages are parsed completely. libxml2 stops building the tree at depth 256 (2,048 with
``huge_tree``) and silently drops everything after: every ``<img>`` and ``<a>`` past a few
hundred unclosed tags was lost. The parser runs with ``huge_tree``; a page deeper still is
parsed again through lxml's event interface (which has no depth limit) into the same tree,
except that elements past ``MAX_DEPTH`` become siblings at that depth instead of children
(Blink does the same past 512). The tree's depth stays bounded, so no walk over it, C or
Python, can exhaust a stack.

Numbers in attributes (``width="300"``) are read with ASCII-only patterns and a bounded
length: ``str.isdigit()`` accepts "²" and "３", which ``int()`` rejects or misreads.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import threading
from typing import Optional

import lxml.html
from bs4 import UnicodeDammit
from lxml import etree

MAX_DEPTH = 2048  # libxml2's own limit with huge_tree: deeper elements become siblings
_PIXELS = re.compile(r"[0-9]{1,9}")  # ASCII digits only; 9 keep int() cheap and the value sane
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # what lxml's API refuses in text
_NOT_NAME = re.compile(r"[^\w.\-]")
_LOCAL = threading.local()  # one parser per thread: its error log tells whether the tree is whole
_TAGS = re.compile(rb"<[^>]*>")
_SNIFF_BYTES = 65536
_PRESCAN_BYTES = 1024
_UTF8_NAMES = frozenset({"utf-8", "utf8", "ascii", "us-ascii"})
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']?([a-zA-Z0-9_.:+-]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([a-zA-Z0-9_.:+-]+)""", re.I)
_NOT_WEB = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "utf-7",
                      "mbcs", "oem"})
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def clean_text(text: Optional[str], limit: int = 500) -> str:
    """Whitespace collapsed, trimmed, at most ``limit`` characters."""
    return " ".join((text or "").split())[:limit]


def int_attr(value: Optional[str]) -> Optional[int]:
    """A declared pixel size (``"300"``, ``"300px"``); None for anything else (``"50%"``)."""
    if not value:
        return None
    digits = value.strip().lower().removesuffix("px")
    return int(digits) if _PIXELS.fullmatch(digits) else None


def web_charset(name: Optional[str]) -> Optional[str]:
    """``name`` when Python decodes text with it and it is a web encoding, else None. A remote
    label must not pick a Python-only codec: "undefined" always raises, "punycode" and "idna"
    raise on ordinary bytes, the escape codecs would read backslashes as escapes (browsers ignore
    labels they do not know, as this does)."""
    if not name:
        return None
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):  # unknown, or a NUL in the label
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_WEB:
        return None
    return name


def _header_charset(content_type: str) -> list[str]:
    declared = []
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and (charset := web_charset(value.strip("\"' "))):
            declared.append(charset)
    return declared


def _sniffed(html: bytes) -> Optional[str]:
    """Undeclared, not UTF-8: guess the charset from the text without its markup (tags are ASCII
    and dilute the statistics: with them, French cp1252 ties with cp1250), decode the whole page."""
    sample = _TAGS.sub(b" ", html[:_SNIFF_BYTES])
    guess = UnicodeDammit(sample, is_html=False).original_encoding
    if not guess:
        return None
    try:
        text = html.decode(guess, errors="replace")
    except (LookupError, ValueError):
        return None
    return text if _keeps_markup(text, html) else None


def declared_charset(html: bytes) -> Optional[str]:
    """The charset a ``<meta>`` or XML declaration names in the first 1024 bytes (the HTML
    standard's prescan window). bs4's EncodingDetector.find_declared_encoding does this over up
    to 5% of the page with a slower pattern: a tenth of our per-page time on the bench corpus."""
    head = html[:_PRESCAN_BYTES]
    found = _XML_DECL.match(head) or _META_CHARSET.search(head)
    return found.group(1).decode("ascii").lower() if found else None


def _strict(html: bytes, encoding: str) -> Optional[str]:
    try:
        return html.decode(encoding)
    except (ValueError, LookupError):  # UnicodeError is a ValueError
        return None


def _decode(html: bytes, content_type: str) -> tuple[str, str]:
    """(text, the codec that decoded it; "" when UnicodeDammit or a lossy fallback did)."""
    bom = html.startswith(_BOMS)
    declared = [] if bom else _header_charset(content_type)  # a BOM wins
    if not bom:
        # The common cases without UnicodeDammit's machinery (it would decode the same way).
        meta = None if declared else web_charset(declared_charset(html))
        encoding = declared[0] if declared else (meta or "utf-8")
        text = _strict(html, encoding)
        if text is not None:
            return text, encoding.lower()
        if not declared and meta is None:
            text = _sniffed(html)
            if text is not None:
                return text, ""
    dammit = UnicodeDammit(html, known_definite_encodings=declared, is_html=True)
    text = dammit.unicode_markup
    if text is None or (not declared and not bom and not _keeps_markup(text, html)):
        return html.decode("utf-8", errors="replace"), ""
    return text, ""


def _keeps_markup(text: str, html: bytes) -> bool:
    """Whether a guessed decoding kept the page's tags: on little text a detector may say UTF-16,
    which turns an ASCII page into CJK (every <img> lost); ASCII-compatible charsets keep each "<"."""
    return text.count("<") * 2 >= html.count(b"<")


def decode_html(html: bytes, content_type: str = "") -> str:
    """HTML bytes to text: BOM, declared charset (header, meta), UTF-8, then sniffing."""
    return _decode(html, content_type)[0]


def utf8_html(html: bytes, content_type: str = "") -> bytes:
    """The page as UTF-8 bytes for the parser: the original bytes when they decoded as UTF-8
    (or ASCII), saving a copy; otherwise the decoded text re-encoded."""
    text, encoding = _decode(html, content_type)
    if encoding in _UTF8_NAMES:
        return html
    return text.encode("utf-8", errors="replace")


def _new_parser():
    """The parser of every page: UTF-8 input (the charset is settled before), no 256-level limit."""
    return lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)


def _parser():
    parser = getattr(_LOCAL, "parser", None)
    if parser is None:
        parser = _LOCAL.parser = _new_parser()
    return parser


def _too_deep(parser) -> bool:
    """Whether the last parse stopped at libxml2's depth limit (the rest of the page is missing)."""
    return any(e.type == etree.ErrorTypes.ERR_RESOURCE_LIMIT for e in parser.error_log)


class _CappedTreeBuilder:
    """Parser target: lxml's TreeBuilder, except that an element opened ``MAX_DEPTH`` levels deep
    closes the deepest open one first and takes its place (a sibling, not a child). The
    builder's API refuses what libxml2's own tree takes (control characters, a quote in a tag
    name, "--" in a comment): such text is repaired, such a comment or PI left out."""

    def __init__(self, parser):
        self._builder = etree.TreeBuilder(parser=parser)
        self._open: list = []  # tags of the elements really open
        self._flattened = 0  # elements opened past the limit and not yet closed

    def start(self, tag, attrib):
        if _at_depth_limit(len(self._open)):
            self._builder.end(self._open.pop())
            self._flattened += 1
        try:
            self._builder.start(tag, attrib)
        except ValueError:
            tag = _xml_name(tag)
            self._builder.start(tag, {_xml_name(k): _xml_text(v) for k, v in attrib.items()})
        self._open.append(tag)

    def end(self, tag):
        if self._flattened:
            self._flattened -= 1
        elif self._open:
            self._builder.end(self._open.pop())

    def data(self, text):
        self._builder.data(_xml_text(text))  # checked when flushed: repaired now

    def comment(self, text):
        with contextlib.suppress(ValueError):
            self._builder.comment(text)

    def pi(self, target, data=None):
        with contextlib.suppress(ValueError):
            self._builder.pi(target, data)

    def close(self):
        while self._open:
            self._builder.end(self._open.pop())
        return self._builder.close()


def _at_depth_limit(depth: int) -> bool:
    return depth >= MAX_DEPTH


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text) if _NOT_XML.search(text) else text


def _xml_name(name: str) -> str:
    """A tag or attribute name lxml's API accepts (libxml2's HTML tokenizer allows any)."""
    clean = _NOT_NAME.sub("_", name)
    return clean if clean[:1].isalpha() else "_" + clean


def _parse_capped(data: bytes):
    """The whole page of a document deeper than libxml2 builds: events into ``_CappedTreeBuilder``."""
    lookup = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True)  # for HtmlElement classes
    target = _CappedTreeBuilder(lookup)
    events = lxml.html.HTMLParser(encoding="utf-8", huge_tree=True, target=target)
    return etree.fromstring(data, events)


def parse_html(text: str | bytes):
    """An lxml.html document of decoded text (or UTF-8 bytes); None when there is nothing to parse."""
    # As UTF-8 bytes: lxml refuses str input that carries an XML encoding declaration,
    # and the charset question is settled already (the parser is told UTF-8).
    data = text.encode("utf-8", errors="replace") if isinstance(text, str) else text
    parser = _parser()
    try:
        doc = lxml.html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):
        return None
    if _too_deep(parser):
        doc = _parse_capped(data)
    return doc
