"""transforms.image_source: URL resolution, tracker checks, lazy sources and noscript twins."""

from urllib.parse import urljoin

import lxml.html
import pytest

from transforms.image_source import image_source, is_tracker, noscript_twins, resolve


@pytest.mark.parametrize("base", ["http://h/a/b.html?q=1", "http://h/", "https://h/a/", "http://h", "ftp://h/x/"])
@pytest.mark.parametrize("src", ["x.jpg", "img/x.jpg?v=2#f", "./x.jpg", "../x.jpg", "/x.jpg", "//cdn.h/x.jpg",
                                 "https://o.h/x.jpg", "?page=2", "#top", "a:b", "x y.jpg", "..", ";p", "\\x.jpg", ""])
def test_resolve_agrees_with_urljoin(base, src):
    expected = urljoin(base, src) if src else ""
    expected = expected if expected.startswith(("http://", "https://")) else ""
    base_dir = urljoin(base, ".")
    assert resolve(base, base_dir if base_dir.startswith(("http://", "https://")) else "", src) == expected


@pytest.mark.parametrize("url,w,h,expected", [
    ("http://h/a.jpg", 1, 1, "declared width 1"),
    ("http://h/a.jpg", 300, 0, "declared height 0"),
    ("http://h/a.jpg", 2, 2, ""),
    ("https://WWW.Facebook.com/tr?id=1", None, None, "matches 'facebook.com/tr'"),
    ("http://h/photo.jpg", None, None, ""),
])
def test_is_tracker(url, w, h, expected):
    assert is_tracker(url, w, h, 1, ("facebook.com/tr", "/pixel.gif")) == expected
    assert is_tracker(url, None, None, 1, ()) == ""  # no declared size, no patterns: nothing to go on


def _imgs(html: str):
    return list(lxml.html.document_fromstring(html).iter("img"))


def test_lazy_attributes_win_over_a_placeholder_src():
    img = _imgs('<img src="/placeholder.gif" data-original="/real.jpg">')[0]
    assert (image_source(img, 256).url, image_source(img, 256).origin) == ("/real.jpg", "data-original")
    img = _imgs('<img src="/real.jpg" data-src="data:image/gif;base64,AA">')[0]
    assert image_source(img, 256).url == "/real.jpg"  # a data: lazy value is no URL


def test_noscript_twins():
    imgs = _imgs('<p><img data-src="/a.jpg"><noscript><img src="/a-full.jpg" alt="A"></noscript></p>'  # lazy before
                 '<p><img src="/b.jpg"><noscript><img src="/other.jpg"></noscript></p>'  # not lazy, other URL
                 '<p><img src="/c.jpg"></p><noscript><img src="/c.jpg"></noscript>'      # same URL elsewhere
                 '<noscript><img src="/only.jpg"></noscript>')                           # the only copy
    twins, lender = noscript_twins(imgs, "http://h/", 256)
    assert sorted(i.get("src") for i in twins) == ["/a-full.jpg", "/c.jpg"]
    assert lender == {imgs[0]: imgs[1]}


@pytest.mark.parametrize("src", ["http://[::1/x.jpg", "http://[oops/x.jpg", "//[x]/y.jpg", "https://[::1",
                                 "http://h:99999/x.jpg", "http://h:abc/x.jpg", "//h:0x50/x.jpg"])
@pytest.mark.parametrize("base", ["http://h/a/b.html", "http://h/"])
def test_resolve_never_raises_on_a_bad_url(base, src):
    assert resolve(base, urljoin(base, "."), src) == ""


def test_resolve_refuses_over_long_urls_never_cuts_them():
    from transforms.url_guard import MAX_URL_CHARS

    base, base_dir = "http://h/a/b.html", "http://h/a/"
    fits = "x" * (MAX_URL_CHARS - len(base_dir))
    assert resolve(base, base_dir, fits) == base_dir + fits  # the plain-path shortcut
    assert resolve(base, base_dir, fits + "y") == ""
    assert resolve(base, base_dir, "./" + fits) == base_dir + fits  # through urljoin
    assert resolve(base, base_dir, "./" + fits + "y") == ""
    assert resolve(base, base_dir, "x" * 100, max_chars=50) == ""


@pytest.mark.parametrize("src", ["a\tb.jpg", "a\nb.jpg", "\x01x.jpg", " x.jpg"])
def test_resolve_agrees_with_urljoin_on_whitespace_and_controls(src):
    base = "http://h/a/b.html"
    assert resolve(base, urljoin(base, "."), src) == urljoin(base, src)


def test_noscript_twins_survive_bad_urls():
    imgs = _imgs('<img data-src="http://[::1"><noscript><img src="//[x]/a.jpg"></noscript><img src="http://[oops/">')
    twins, _ = noscript_twins(imgs, "http://h/", 256)
    assert len(twins) == 1
