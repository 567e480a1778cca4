"""Property-based fuzzing of every parser of HTML, URLs and input rows (issue 14, item 2).

Each test feeds generated input — arbitrary text and bytes, and markup, rows and URLs built from
nasty pieces (brackets, %, non-ASCII digits, controls, deep nesting, bad charsets) — to one parser
boundary and asserts that no exception escapes and that every input ends as a pair or a rejection.
A few dozen derandomized examples each in the suite (tests/conftest.py); ``python -m bench.fuzz``
runs them long and random.
"""

from __future__ import annotations

import csv
import gzip
import html
import io
import json
import math
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.records import AltPair, Rejection
from pipeline.specs import extract_spec
from tests.default_specs import spec_with
from transforms.crawl import _absolute, normalize_url, page_links
from transforms.extract_alt_text import ExtractSpec, extract_pairs
from transforms.html_text import clean_text, decode_html, int_attr, parse_html, utf8_html
from transforms.image_source import join_url, resolve
from transforms.list_rows import Unreadable, file_rows
from transforms.sources import parse_seed_line
from transforms.srcset import choose_candidate, parse_srcset
from transforms.url_guard import MAX_URL_CHARS, join, parses, url_problem
from transforms.url_list import read_list_file

pytestmark = pytest.mark.fuzz

# ---- strategies ---------------------------------------------------------------------------------

_NASTY = list("abcxyz019:/?#[]@%.-_~!$&'()*+,;= \t\n\r\\\"<>") + ["é", "１", "²", "\u3000", "\x00", "\x7f", "\u2028",
                                                                 "\ud800", "%zz", "%41", "::1", ".."]
_PREFIXES = ["", "http://", "https://", "//", "HTTP://", "http://[", "http://[::1]", "http://h:", "http://h/",
             "https://[oops/", "javascript:", "data:", "ftp://", "?", "#", "./", "../", "/"]
nasty_text = st.lists(st.sampled_from(_NASTY), max_size=25).map("".join)
url_text = st.one_of(st.tuples(st.sampled_from(_PREFIXES), nasty_text).map("".join), st.text(max_size=40))
bases = st.sampled_from(["http://h/a/b.html?q=1", "https://h/", "http://[::1]:8080/x/", "http://h", "",
                         "http://[oops/", "http://h:abc/", "ftp://h/x/"])
charsets = st.sampled_from(["utf-8", "latin-1", "windows-1252", "shift_jis", "utf-16", "utf-32", "koi8-r", "utf-7",
                            "undefined", "punycode", "idna", "unicode_escape", "rot13", "no-such", "", "ascii\x00"])
content_types = st.one_of(charsets.map(lambda c: f"text/html; charset={c}"), st.text(max_size=30),
                          st.just("text/html"))

SPEC = spec_with(extract_spec)  # the default config's


_C0 = "".join(map(chr, range(33)))  # what browsers (and urlsplit, at the start) strip from a URL


def _ok_url(url: str) -> bool:
    return url == "" or (url_problem(url) == "" and url.encode("utf-8"))


# ---- numbers ------------------------------------------------------------------------------------

@given(st.one_of(st.text(max_size=30), nasty_text, st.integers(0, 10**12).map(str), st.just("9" * 5000)))
def test_int_attr_is_none_or_a_bounded_int(value):
    got = int_attr(value)
    assert got is None or (isinstance(got, int) and 0 <= got <= 999_999_999)
    if got is not None:
        assert value.strip().lower().removesuffix("px").isascii()


_DESCRIPTORS = st.sampled_from(["300w", "0w", "2x", "1.5x", "1e999x", "３００w", "²x", "9" * 5000 + "w", "200h", "x",
                                "w", ".5x", "-1x", "1e-9x", "(", ")", ",", " "])


@given(st.lists(st.tuples(url_text, st.lists(_DESCRIPTORS, max_size=3)), max_size=6).map(
    lambda parts: ", ".join(u + " " + " ".join(d) for u, d in parts)) | st.text(max_size=60),
       st.integers(1, 4000), st.one_of(st.none(), st.integers(0, 10**6)))
def test_srcset_parses_anything_to_sane_candidates(value, target, declared):
    cands = parse_srcset(value)
    for c in cands:
        assert c.url and not any(ch in c.url for ch in " \t\n\r\f")
        assert c.width is None or (isinstance(c.width, int) and 0 < c.width <= 999_999_999)
        assert c.density is None or (0 < c.density and math.isfinite(c.density))
        assert c.descriptor
    chosen = choose_candidate(cands, target, declared)
    assert (chosen is None) == (not cands)


# ---- URLs ---------------------------------------------------------------------------------------

def _reference(base: str, src: str) -> str:
    """What resolve must give: urljoin (never raising), kept when it is a fetchable http(s) URL."""
    absolute = join(base, src) if src else ""
    return absolute if absolute.startswith(("http://", "https://")) and not url_problem(absolute) else ""


@given(bases, url_text.map(lambda t: t.replace("\ud800", "")))  # lxml's text carries no lone surrogate
def test_resolve_agrees_with_a_careful_urljoin(base, src):
    base = base if parses(base) else ""  # extraction only ever passes a base that parses
    base_dir = join(base, ".") if base else ""
    base_dir = base_dir if base_dir.startswith(("http://", "https://")) and not url_problem(base_dir, None) else ""
    src = src.strip().lstrip(_C0)  # a control-only src is no src, not the page
    got = resolve(base, base_dir, src)
    assert _ok_url(got)
    if (base_dir or not base.startswith("http")) and ";" not in src:  # urljoin drops an empty ";params"
        # and an empty "?" or "#", which browsers keep (so does the plain-path shortcut)
        assert urlsplit(got).geturl() == urlsplit(_reference(base, src)).geturl()
    assert join_url(base_dir, src) in ("", join_url(base_dir, src))


@given(url_text)
def test_normalize_url_never_raises_and_is_stable_on_good_urls(url):
    out = normalize_url(url)
    assert isinstance(out, str) and "#" not in out.split("]")[-1] or "#" in url
    if url_problem(url.strip(_C0), None) == "":
        assert url_problem(out, None) == "" and normalize_url(out) == out


@given(bases, url_text)
def test_absolute_links_are_normalised_fetchable_or_nothing(base, href):
    got = _absolute(base if parses(base) else "", href)
    assert _ok_url(got) and len(got) <= MAX_URL_CHARS
    if got:
        assert normalize_url(got) == got


@given(st.one_of(url_text, st.text(max_size=50)))
def test_seed_lines_are_fetchable_urls_or_skipped(line):
    got = parse_seed_line(line)
    assert got is None or (url_problem(got) == "" and got == line.strip())


# ---- HTML ---------------------------------------------------------------------------------------

_ATTR_NAMES = ["src", "srcset", "data-src", "data-srcset", "alt", "title", "width", "height", "href", "lang", "rel",
               "name", "content", "type", "sizes"]
_ATTR_VALUES = st.one_of(url_text, _DESCRIPTORS, st.sampled_from(["canonical", "noai", "robots", "1", "image/avif"]),
                         st.text(max_size=20))
_TAGS = ["div", "span", "p", "figure", "figcaption", "picture", "source", "noscript", "a", "h1", "h3", "base", "link",
         "meta", "table", "td", "font", "b", "section"]


@st.composite
def markup(draw):
    """(HTML, the number of <img> elements in it, whether some are inside <noscript>)."""
    parts, imgs, in_noscript, open_noscript = [], 0, False, 0
    for _ in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["img", "open", "close", "text", "deep"]))
        attrs = "".join(f' {name}="{html.escape(value, quote=True)}"' for name, value in
                        draw(st.lists(st.tuples(st.sampled_from(_ATTR_NAMES), _ATTR_VALUES), max_size=4)))
        if kind == "img":
            parts.append(f"<img{attrs}>")
            imgs += 1
            in_noscript = in_noscript or open_noscript > 0
        elif kind == "open":
            tag = draw(st.sampled_from(_TAGS))
            open_noscript += tag == "noscript"
            parts.append(f"<{tag}{attrs}>")
        elif kind == "close":
            parts.append(f"</{draw(st.sampled_from(_TAGS))}>")
        elif kind == "text":
            parts.append(html.escape(draw(st.text(max_size=20))))
        else:
            parts.append(f"<{draw(st.sampled_from(['div', 'span', 'font']))}>" * draw(st.sampled_from([300, 2100])))
    title = html.escape(draw(st.text(max_size=10)))
    # noscript content may be parsed as text, and tags closed out of order may move an <img>
    # into one: count it as possibly a twin then.
    return f"<html><head><title>{title}</title></head><body>{''.join(parts)}</body></html>", imgs, open_noscript > 0


@given(markup(), st.sampled_from(["http://site.test/d/p.html", "https://[::1]/x", "http://[oops/"]), content_types)
def test_extract_pairs_accounts_for_every_img(page, page_url, content_type):
    text, imgs, noscript = page
    pairs, rejected = extract_pairs(text.encode("utf-8", "surrogatepass"), page_url, content_type, SPEC)
    keys = [o.key for o in pairs + rejected]
    assert len(keys) == len(set(keys))
    if content_type.endswith(("charset=utf-16", "charset=utf-32")):
        return  # the UTF-8 bytes read as UTF-16 are another page
    if noscript:
        assert len(keys) <= imgs
    else:
        assert len(keys) == imgs
    for pair in pairs:
        assert isinstance(pair, AltPair) and url_problem(pair.image_url) == ""
        pair.caption.encode("utf-8")
    for rej in rejected:
        assert isinstance(rej, Rejection) and len(rej.detail) <= 300 and rej.reason.startswith("extract.")


@given(st.binary(max_size=400), content_types, st.sampled_from(["http://h/p", "http://[oops/", ""]))
def test_extract_pairs_and_page_links_take_any_bytes(data, content_type, page_url):
    pairs, rejected = extract_pairs(data, page_url, content_type, SPEC)
    doc = parse_html(utf8_html(data, content_type))
    n_imgs = 0 if doc is None else sum(1 for _ in doc.iter("img"))
    assert len(pairs) + len(rejected) <= n_imgs
    found = page_links(data, page_url, content_type)
    assert all(_ok_url(link) for link in found.links) and _ok_url(found.canonical)


@given(markup(), st.sampled_from(["http://h/d/p.html", "http://[oops/"]))
def test_page_links_finds_only_fetchable_normalised_links(page, page_url):
    text, _, _ = page
    extra = '<a href="http://found.test/x">x</a>'
    found = page_links((text.replace("</body>", extra + "</body>")).encode("utf-8", "surrogatepass"), page_url)
    assert all(url_problem(link) == "" and normalize_url(link) == link for link in found.links)
    assert found.links == tuple(sorted(set(found.links)))
    assert "http://found.test/x" in found.links or "<noscript" in text or "<table" in text


@given(st.binary(max_size=300), content_types)
def test_decode_html_takes_any_bytes_and_content_type(data, content_type):
    assert isinstance(decode_html(data, content_type), str)
    utf8_html(data, content_type).decode("utf-8")
    assert isinstance(clean_text(decode_html(data)), str)


# ---- URL lists ----------------------------------------------------------------------------------

_FORMATS = ["csv", "tsv", "json", "jsonl", "txt"]


def _all_accounted(out: list) -> None:
    assert all(isinstance(o, (AltPair, Rejection)) for o in out)
    keys = [o.key for o in out]
    assert len(keys) == len(set(keys))
    for o in out:
        for text in (o.image_url, o.caption):
            assert isinstance(text, str)
            text.encode("utf-8")  # nothing that cannot be written
        if isinstance(o, AltPair):
            assert url_problem(o.image_url) == ""
            for name, value in o.extra:
                assert isinstance(name, str) and (value is None or isinstance(value, (str, int, float, bool)))
                if isinstance(value, str):
                    value.encode("utf-8")
        else:
            assert o.reason.startswith("extract.") and len(o.detail) <= 300


def _rows(fmt: str, data: bytes) -> list:
    """The file's rows; [] for a file unreadable as a whole (read_list_file's one rejection)."""
    try:
        return list(file_rows(fmt, data, "list:/x", "/x." + fmt, "url", "caption", MAX_URL_CHARS))
    except Unreadable:
        return []


@given(st.sampled_from(_FORMATS), st.binary(max_size=300))
def test_any_bytes_as_a_list_file(fmt, data):
    _all_accounted(_rows(fmt, data))


_VALUES = st.one_of(url_text, st.text(max_size=20), st.none(), st.integers(), st.floats(allow_nan=True),
                    st.booleans(), st.lists(st.integers(), max_size=2), st.just("\ud800"))


@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["url", "caption", "note", "\udc80"]), _VALUES, max_size=4),
                          st.none(), st.integers(), st.text(max_size=5)), max_size=8),
       st.sampled_from(["json", "jsonl"]))
def test_json_lists_account_for_every_element(rows, fmt):
    if fmt == "json":
        data = json.dumps(rows).encode()
    else:
        data = "\n".join(json.dumps(r) for r in rows).encode()
    out = _rows(fmt, data)
    _all_accounted(out)
    assert len(out) == len(rows)


@given(st.lists(st.tuples(url_text, st.text(max_size=15)), min_size=1, max_size=8),
       st.sampled_from(["csv", "tsv"]), st.booleans())
def test_csv_lists_account_for_every_row(rows, fmt, latin1):
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t" if fmt == "tsv" else ",")  # "\r\n": a bare "\r" is quoted
    writer.writerow(["url", "caption", "note"])
    for url, caption in rows:
        writer.writerow([url.replace("\x00", ""), caption.replace("\x00", ""), "n"])
    data = buf.getvalue().encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8
    if latin1:  # one byte that is not UTF-8 somewhere in each row's caption
        data = data.replace(b",n\r\n", b"\xe9,n\r\n").replace(b"\tn\r\n", b"\xe9\tn\r\n")
    out = _rows(fmt, data)
    _all_accounted(out)
    assert len(out) == len(rows)
    assert not any(o.caption.startswith(("b'", 'b"')) for o in out)


@given(st.sampled_from(_FORMATS + ["parquet"]), st.binary(max_size=200), st.booleans())
def test_read_list_file_on_disk_gzipped_or_not(tmp_path_factory, fmt, data, gz):
    path = tmp_path_factory.mktemp("lists") / (f"l.{fmt}" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(data) if gz and data[:1] != b"!" else data)
    _all_accounted(list(read_list_file(str(path), max_url_chars=SPEC.max_url_chars)))
