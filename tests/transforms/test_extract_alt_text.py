from pipeline.records import DropReason
from transforms.extract_alt_text import decode_html, extract_pairs

PAGE = "http://site.test/dir/page.html"

HTML = b"""<!doctype html><html lang="en"><head><title> My  Page </title></head><body>
<h1>Top</h1>
<img src="/a.jpg" alt="a red circle on blue" title="t1" width="300" height="200px">
<h2>Shapes</h2>
<figure lang="de"><img src="b.jpg" alt="  two   squares  "><figcaption>Figure 2: squares</figcaption></figure>
<img src="data:image/gif;base64,R0lGOD" alt="tracker">
<img alt="no source">
<img data-src="/lazy.jpg" src="data:image/gif;base64,AAAA" alt="lazy loaded image">
<img src="/noalt.jpg">
</body></html>"""


def test_pairs_with_context():
    pairs, rejected = extract_pairs(HTML, PAGE, "text/html")
    by_url = {p.image_url: p for p in pairs}
    a = by_url["http://site.test/a.jpg"]
    assert a.caption == "a red circle on blue" and a.title == "t1"
    assert (a.page_title, a.heading, a.lang) == ("My Page", "Top", "en")
    assert (a.declared_width, a.declared_height) == (300, 200)
    b = by_url["http://site.test/dir/b.jpg"]
    assert b.caption == "two squares" and b.figcaption == "Figure 2: squares"
    assert (b.heading, b.lang) == ("Shapes", "de")
    assert by_url["http://site.test/lazy.jpg"].caption == "lazy loaded image"
    assert by_url["http://site.test/noalt.jpg"].caption == ""
    reasons = sorted(r.reason for r in rejected)
    assert reasons == [DropReason.EXTRACT_BAD_URL.value, DropReason.EXTRACT_DATA_URI.value]
    # every <img> accounted for, with distinct stable keys
    keys = [p.key for p in pairs] + [r.key for r in rejected]
    assert len(keys) == 6 == len(set(keys))
    assert [p.position for p in pairs] == sorted(p.position for p in pairs)


def test_base_href_is_honoured():
    html = b'<html><head><base href="http://cdn.test/img/"></head><body><img src="x.png" alt="a b c d"></body></html>'
    pairs, _ = extract_pairs(html, PAGE)
    assert pairs[0].image_url == "http://cdn.test/img/x.png"


def test_non_utf8_pages_decode():
    html = '<html><head><meta charset="iso-8859-1"></head><body><img src="/c.jpg" alt="café crème brûlée"></body></html>'
    pairs, _ = extract_pairs(html.encode("latin-1"), PAGE)
    assert pairs[0].caption == "café crème brûlée"
    pairs, _ = extract_pairs(html.encode("latin-1"), PAGE, "text/html; charset=ISO-8859-1")
    assert pairs[0].caption == "café crème brûlée"


def test_xml_declaration_and_broken_markup_do_not_crash():
    html = b'<?xml version="1.0" encoding="utf-8"?><html><body><div><img src="/d.jpg" alt="x y z w"><p><b>unclosed'
    pairs, _ = extract_pairs(html, PAGE)
    assert [p.image_url for p in pairs] == ["http://site.test/d.jpg"]
    assert extract_pairs(b"", PAGE) == ([], [])
    assert extract_pairs(b"\x00\xff\xfe garbage", PAGE)[0] == []


def test_decode_html_prefers_declared_charset():
    assert decode_html("é".encode("cp1252"), "text/html; charset=windows-1252") == "é"

