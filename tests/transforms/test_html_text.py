"""transforms.html_text: charset prescan, decoding order, tolerant parsing."""

import pytest

from transforms.html_text import clean_text, declared_charset, decode_html, int_attr, parse_html, utf8_html


@pytest.mark.parametrize("head,expected", [
    (b'<?xml version="1.0" encoding="UTF-8"?><html>', "utf-8"),
    (b'<html><head><meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">', "iso-8859-1"),
    (b"<meta charset=utf-8>", "utf-8"),
    (b"<META CHARSET='windows-1251'/>", "windows-1251"),
    (b"<html><body>no declaration</body></html>", None),
    (b" " * 1100 + b'<meta charset="koi8-r">', None),  # past the 1024-byte prescan window
])
def test_declared_charset(head, expected):
    assert declared_charset(head) == expected


def test_decode_order():
    text = "café"
    assert decode_html(text.encode("cp1252"), "text/html; charset=windows-1252") == text   # header
    assert decode_html(b'<meta charset="iso-8859-1">' + text.encode("latin-1")).endswith(text)  # meta
    assert decode_html(text.encode("utf-8")) == text                                       # undeclared UTF-8
    bom = "\ufeff<p>café</p>".encode("utf-8")
    assert decode_html(bom, "text/html; charset=windows-1252").endswith("<p>café</p>")       # BOM beats header
    assert decode_html(b"\xff\xfe\xfd", "text/html; charset=no-such-codec")  # never raises


def test_parse_and_helpers():
    assert parse_html("") is None and parse_html("<p>x") is not None
    assert parse_html('<?xml version="1.0" encoding="latin-1"?><p>é</p>').text_content() == "é"
    assert clean_text("  a \n b\t", 10) == "a b" and clean_text(None) == ""
    assert [int_attr(v) for v in ("300", "300px", " 12 ", "50%", "", None, "1.5")] == [300, 300, 12, None, None, None, None]


# ---- remote numbers and deep pages (issue 14) ---------------------------------------------------

import lxml.html  # noqa: E402

from transforms import html_text  # noqa: E402
from transforms.html_text import MAX_DEPTH  # noqa: E402


@pytest.mark.parametrize("value", ["²", "３００", "٣٠٠", "300²", "9" * 10_000, "1" * 10, "-3", "+3", "0x10", "3 00"])
def test_int_attr_reads_ascii_digits_only_and_bounded(value):
    assert int_attr(value) is None  # never an exception, never a misread
    assert int_attr("999999999") == 999_999_999 and int_attr("007px") == 7


def _deep(depth: int, tag: str = "div") -> bytes:
    tail = "".join(f'<h2>H{i}</h2><img src="/{i}.jpg" alt="image {i}"><a href="/p{i}">p{i}</a>' for i in range(3))
    return f"<html><head><title>T</title></head><body>{f'<{tag}>' * depth}{tail}".encode()


@pytest.mark.parametrize("depth", [300, 2000, 5000, 100_000])
@pytest.mark.parametrize("tag", ["div", "span", "font"])
def test_a_deep_page_is_parsed_completely(depth, tag):
    doc = parse_html(_deep(depth, tag))
    assert [i.get("src") for i in doc.iter("img")] == ["/0.jpg", "/1.jpg", "/2.jpg"]
    assert doc.xpath("//a/@href") == ["/p0", "/p1", "/p2"]
    deepest = max(len(list(e.iterancestors())) for e in doc.iter("img"))
    assert deepest <= MAX_DEPTH  # bounded: no walk over the tree can run out of stack
    assert "image" not in doc.text_content() and doc.text_content().endswith("H0p0H1p1H2p2")


def test_the_parser_keeps_depths_libxml2_would_cut_at_256():
    doc = lxml.html.document_fromstring(_deep(1000), parser=html_text._new_parser())
    assert len(list(doc.iter("img"))) == 3  # huge_tree: one pass, no fallback needed


def _shape(doc) -> list:
    """Every node's tag, text, tail and attributes (a valueless boolean attribute reads as its
    name in libxml2's tree, "" from parse events: the same to every reader of ours)."""
    def attrs(el):
        return sorted((k, "" if v == k else v) for k, v in el.attrib.items())
    return [(el.tag, el.text, el.tail, attrs(el)) for el in doc.iter()]


def test_the_capped_builder_builds_the_same_tree_as_libxml2():
    from pathlib import Path

    pages = sorted((Path(__file__).parent / "pages").glob("*.html"))
    assert pages
    for data in [p.read_bytes() for p in pages] + [_deep(1500), b"<p>a<!-- c --><?pi x?>b<br>c"]:
        assert _shape(html_text._parse_capped(data)) == _shape(parse_html(data))


def test_past_the_limit_elements_become_siblings_and_keep_their_content():
    doc = parse_html(("<body>" + "<b>" * (MAX_DEPTH + 50) + "<i>x</i>y").encode())
    assert doc.xpath("count(//b)") == MAX_DEPTH + 50
    assert len(doc.xpath("//i")) == 1 and doc.text_content() == "xy"
    deepest = doc.xpath("//i")[0]
    assert MAX_DEPTH == 2048 and len(list(deepest.iterancestors())) <= 2048


@pytest.mark.parametrize("charset", ["undefined", "punycode", "idna", "unicode_escape", "raw_unicode_escape", "utf-7",
                                     "rot13", "base64", "ascii\x00", "no-such", ""])
def test_a_charset_label_that_is_no_web_encoding_counts_as_undeclared(charset):
    data = "<p>café \\x41\\u0042 +AGE-</p>".encode("utf-8")
    for html in (data, f'<meta charset="{charset}">'.encode("utf-8", "replace") + data):
        assert decode_html(html, f"text/html; charset={charset}").endswith("<p>café \\x41\\u0042 +AGE-</p>")
        utf8_html(html, f"text/html; charset={charset}").decode("utf-8")


def test_a_charset_guess_that_would_destroy_the_markup_is_refused():
    """Little text, one invalid byte sequence: the detector says UTF-16, which turns every tag to CJK."""
    page = ("<html><head><title>00000\x1b</title></head><body>" + "<img>" * 5 + "<div>" * 2100
            + '<img src="\ud800"></body></html>')
    data = page.encode("utf-8", "surrogatepass")
    assert decode_html(data).startswith("<html><head><title>00000")
    assert len(list(parse_html(utf8_html(data)).iter("img"))) == 6
    utf16 = "<p>é</p>".encode("utf-16-be")  # a real UTF-16 page keeps its tags either way
    assert decode_html(utf16, "text/html; charset=utf-16-be") == "<p>é</p>"
