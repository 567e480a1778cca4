"""transforms.html_text: charset prescan, decoding order, tolerant parsing."""

import pytest

from transforms.html_text import clean_text, declared_charset, decode_html, int_attr, parse_html


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
