"""Golden extraction tests on hand-written pages that mimic real markup (tests/transforms/pages/).

Each page lists every <img> outcome: (position, image URL, caption, where the URL came from) for
pairs, (position, reason) for rejections. Positions count every <img> of the page, so a skipped
<noscript> copy leaves a gap and keys of later images do not move.
"""

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.config import CurateConfig, ResizeConfig
from pipeline.records import DropReason
from pipeline.specs import extract_spec
from transforms.extract_alt_text import extract_pairs

PAGES = Path(__file__).parent / "pages"
SPEC = extract_spec(CurateConfig())
TRACKER = DropReason.EXTRACT_TRACKER.value
WP = "https://blog.example/wp-content/uploads/"


def _host_path(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc + parts.path




def _outcome(name: str, url: str, content_type: str = "text/html"):
    pairs, rejected = extract_pairs((PAGES / f"{name}.html").read_bytes(), url, content_type, SPEC)
    got = [(p.position, p.image_url, p.caption, dict(p.extra).get("src_from", "src")) for p in pairs]
    return got, sorted((r.key, r.reason) for r in rejected), pairs, rejected


def test_wordpress_lazy_images():
    got, _, pairs, rejected = _outcome("wordpress_lazy", "https://blog.example/2023/10/autumn-alps/")
    assert got == [
        (1, WP + "2023/01/logo.png", "A Travel Blog", "src"),
        # WP Rocket: data-lazy-srcset wins over the svg placeholder; 300w is the smallest >= 256
        (2, WP + "2023/10/lake-300x200.jpg", "Larch trees turning gold above a mountain lake", "srcset 300w"),
        # lazysizes: data-srcset over the placeholder gif in src
        (4, WP + "2023/10/hut-400x300.jpg", "A stone mountain hut with red shutters", "srcset 400w"),
        # the lazy copy has no alt: its noscript twin lends it
        (6, WP + "2023/10/cows.jpg", "Brown cows grazing on a steep meadow", "data-src"),
        (8, "https://emoji.cdn.example/images/core/emoji/14.0.0/svg/1f373.svg", "\U0001f373", "src"),
        (9, WP + "2023/10/summit.jpg", "View from the summit cross over a sea of clouds", "src"),
        (10, WP + "2023/09/lakes-150x150.jpg", "Read more", "src"),
    ]
    # the noscript copies (positions 3, 5, 7) are not pairs: no image counted twice
    # third-party hosts as the page names them (parsed only: nothing here is fetched)
    assert [(_host_path(r.image_url), r.reason) for r in rejected] == [
        ("www.facebook.com/tr", TRACKER),  # 1x1 in <noscript> in <head>
        ("pixel.wp.com/g.gif", TRACKER)]   # Jetpack stats pixel (6x5, known pattern)
    lake = pairs[1]
    assert (lake.figcaption, lake.heading, lake.lang, lake.page_title) == (
        "The lake at 2,100 m", "Autumn in the Alps", "en-us", "Autumn in the Alps \u2013 A Travel Blog")
    assert (lake.declared_width, lake.declared_height) == (1024, 683)
    assert pairs[5].title == "Summit" and pairs[2].heading == "The hut"


def test_picture_and_srcset():
    got, rejected, _, _ = _outcome("picture_srcset", "https://shop.example/p/jacket")
    assert got == [
        # AVIF source skipped (not decoded); WebP widths: 400 is the smallest >= 256
        (0, "https://shop.example/img/jacket-400.webp", "Olive field jacket with four pockets", "picture 400w"),
        # x descriptors with width=120: 2x = 240 < 256, 3x = 360
        (1, "https://shop.example/img/pocket@3x.jpg", "Close-up of the chest pocket zip", "srcset 3x"),
        (2, "https://shop.example/img/collar.jpg", "The corduroy collar folded down", "src"),
        (3, "https://cdn.shop.example/image/upload/w_300,h_300,c_fill/cuff.jpg", "Adjustable cuff with a snap button",
         "srcset 300w"),  # commas inside CDN URLs
        (4, "https://shop.example/img/label-180.jpg", "Care label sewn into the lining", "srcset 180w"),  # widest
    ]
    assert rejected == []


def test_srcset_target_follows_the_resize_size():
    pairs, _ = extract_pairs((PAGES / "picture_srcset.html").read_bytes(), "https://shop.example/p/jacket",
                             spec=extract_spec(CurateConfig(resize=ResizeConfig(image_size=512))), content_type="")
    assert pairs[0].image_url.endswith("jacket-800.webp") and pairs[1].image_url.endswith("pocket@3x.jpg")


def test_base_href():
    got, _, pairs, _ = _outcome("base_href", "https://www.news.example/2024/festival.html")
    assert [(u, c) for _, u, c, _ in got] == [
        ("https://cdn.news.example/media/2024/boats.jpg", "Sailing boats in the harbour at dusk"),
        ("https://cdn.news.example/logo.png", "News Example logo in blue letters"),
        ("https://images.other.example/fireworks.jpg", "Fireworks above the old lighthouse"),
        ("https://www.news.example/crowd.jpg", "A crowd on the quay watching the parade"),
        ("https://cdn.news.example/media/archive/2019/harbour.jpg", "The same harbour five years earlier"),
    ]
    assert {p.lang for p in pairs} == {"en"}  # <body lang> is the nearest ancestor with one


def test_broken_markup_parses_as_browsers_do():
    got, _, _, _ = _outcome("broken_markup", "http://old.example/gallery/index.html")
    assert got == [
        (0, "http://old.example/gallery/one.jpg", "unquoted", "src"),
        (1, "http://old.example/gallery/two.jpg", 'Two "quoted" words & an ampersand', "src"),
        (2, "http://old.example/gallery/three.jpg", "Inside a table cell without closing tags", "src"),
        (3, "http://old.example/gallery/four.jpg", "An attribute with a newline in the middle", "src"),
        # an unclosed quote swallows the next tag; a tag cut off by the end of the file is no tag
        (4, "http://old.example/gallery/five.jpg", "missing close quote> <img src=", "src"),
    ]


NON_UTF8 = ('<html><head><meta charset="{charset}"><title>{title}</title></head>'
            '<body><img src="/a.jpg" alt="{alt}"></body></html>')


@pytest.mark.parametrize("charset,title,alt", [
    ("windows-1251", "Фотогалерея", "Собака бежит по зелёной траве"),
    ("shift_jis", "写真", "窓の外の山の景色"),
    ("iso-8859-2", "Galeria", "Zielona łąka pod Tatrami"),
    ("gb2312", "相册", "湖边的红色小船"),
])
def test_non_utf8_pages_declared_in_meta(charset, title, alt):
    html = NON_UTF8.format(charset=charset, title=title, alt=alt).encode(charset)
    pairs, _ = extract_pairs(html, "http://intl.example/p.html", "text/html", SPEC)
    assert (pairs[0].caption, pairs[0].page_title) == (alt, title)


def test_charset_from_header_bom_and_sniffing():
    body = '<html><body><img src="/a.jpg" alt="Crème brûlée au café"></body></html>'
    assert extract_pairs(body.encode("cp1252"), "http://x.example/", "text/html; charset=windows-1252",
                         SPEC)[0][0].caption == "Crème brûlée au café"
    utf16 = "\ufeff".encode("utf-16-le") + body.encode("utf-16-le")  # BOM, no declaration anywhere
    assert extract_pairs(utf16, "http://x.example/", "text/html", SPEC)[0][0].caption == "Crème brûlée au café"
    # Undeclared and not UTF-8: sniffed from the text (a real page has more of it than one alt)
    page = ("<html><body><p>Le café de la gare est fermé depuis l'été dernier. Les habitués se retrouvent "
            "désormais à la brasserie près de l'église, où l'on sert une crème brûlée très appréciée.</p>"
            '<img src="/a.jpg" alt="Crème brûlée au café"></body></html>')
    undeclared = extract_pairs(page.encode("cp1252"), "http://x.example/", "text/html", SPEC)[0][0]
    assert undeclared.caption == "Crème brûlée au café"


@pytest.mark.parametrize("img,reason", [
    ('<img src="/p.gif" width="1" height="1" alt="x">', TRACKER),
    ('<img src="/p.gif" width="0" height="0">', TRACKER),
    ('<img src="/p.gif" height="1px" width="600">', TRACKER),        # a 1 px rule is no content either
    ('<img src="//www.google-analytics.com/collect?v=1&t=pageview">', TRACKER),
    ('<img src="/images/Pixel.GIF?u=1" alt="a real looking caption">', TRACKER),  # case-insensitive
    ('<img src="data:image/png;base64,iVBORw0KGgo=" alt="inline">', DropReason.EXTRACT_DATA_URI.value),
    ('<img data-src="data:image/gif;base64,AA" src="javascript:void(0)">', DropReason.EXTRACT_BAD_URL.value),
    ('<img src="/photo.jpg" width="2" height="2">', None),  # 2x2 declared: not a tracker by default
])
def test_rejections(img, reason):
    pairs, rejected = extract_pairs(f"<html><body>{img}</body></html>".encode(), "http://x.example/", spec=SPEC, content_type="")
    assert [r.reason for r in rejected] == ([reason] if reason else [])
    assert len(pairs) + len(rejected) == 1
