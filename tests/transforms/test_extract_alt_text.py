from pipeline.records import DropReason
from pipeline.specs import extract_spec
from tests.default_specs import spec_with
from transforms.extract_alt_text import decode_html, extract_pairs

PAGE = "http://site.test/dir/page.html"
SPEC = spec_with(extract_spec)  # the default config's

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
    pairs, rejected = extract_pairs(HTML, PAGE, "text/html", SPEC)
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
    pairs, _ = extract_pairs(html, PAGE, "", SPEC)
    assert pairs[0].image_url == "http://cdn.test/img/x.png"


def test_non_utf8_pages_decode():
    html = '<html><head><meta charset="iso-8859-1"></head><body><img src="/c.jpg" alt="café crème brûlée"></body></html>'
    pairs, _ = extract_pairs(html.encode("latin-1"), PAGE, "", SPEC)
    assert pairs[0].caption == "café crème brûlée"
    pairs, _ = extract_pairs(html.encode("latin-1"), PAGE, "text/html; charset=ISO-8859-1", SPEC)
    assert pairs[0].caption == "café crème brûlée"


def test_xml_declaration_and_broken_markup_do_not_crash():
    html = b'<?xml version="1.0" encoding="utf-8"?><html><body><div><img src="/d.jpg" alt="x y z w"><p><b>unclosed'
    pairs, _ = extract_pairs(html, PAGE, "", SPEC)
    assert [p.image_url for p in pairs] == ["http://site.test/d.jpg"]
    assert extract_pairs(b"", PAGE, "", SPEC) == ([], [])
    assert extract_pairs(b"\x00\xff\xfe garbage", PAGE, "", SPEC)[0] == []


def test_decode_html_prefers_declared_charset():
    assert decode_html("é".encode("cp1252"), "text/html; charset=windows-1252") == "é"



# ---- page opt-outs (<meta> noai / TDMRep) and licence capture (helper B) ----------------------

import pytest  # noqa: E402
from hypothesis import given, strategies as st  # noqa: E402

from pipeline.config import CurateConfig, ExtractConfig, FetchConfig, ResizeConfig  # noqa: E402
from transforms.extract_alt_text import ExtractSpec  # noqa: E402

_OPT_OUT_BODY = ('<img src="/a.jpg" alt="a red circle on blue"><img src="/b.jpg" alt="two blue squares">'
                 '<img src="data:image/gif;base64,R0lGOD" alt="inline">')


def _opt_out(head: str, spec: ExtractSpec = spec_with(extract_spec), body: str = _OPT_OUT_BODY):
    return extract_pairs(f"<html><head>{head}</head><body>{body}</body></html>".encode(), PAGE, "text/html", spec)


NOAI = DropReason.EXTRACT_PAGE_NOAI.value
TDM = DropReason.EXTRACT_TDM_RESERVED.value


@pytest.mark.parametrize("head, expected", [
    ("", None),
    ('<meta name="robots" content="noai">', NOAI),
    ('<meta name="robots" content="noimageai">', NOAI),
    ('<meta name="ROBOTS" content="NoAI">', NOAI),
    ('<meta name="robots" content="index, follow, noimageai">', NOAI),
    ('<meta name="robots" content="noai,noimageai">', NOAI),
    ('<meta name="robots" content="  noindex   noai ">', NOAI),
    ('<meta name="robots" content="index"><meta name="robots" content="noai">', NOAI),  # several tags
    ('<meta name="wit-curator" content="noimageai">', NOAI),  # our own bot name
    ('<meta name="Wit-Curator" content="index, noai">', NOAI),
    ('<meta name="googlebot" content="noai">', None),  # another bot's business
    ('<meta name="CCBot" content="noai, noimageai">', None),
    ('<meta name="robots" content="noindex, nofollow">', None),  # not an AI opt-out
    ('<meta name="robots" content="noairline">', None),
    ('<meta name="description" content="we say noai here">', None),
    ('<meta content="noai">', None),
    ('<meta name="tdm-reservation" content="1">', TDM),
    ('<meta name="tdm-reservation" content=" 1 "><meta name="tdm-policy" content="https://site.test/p.json">', TDM),
    ('<meta name="tdm-reservation" content="0">', None),
    ('<meta name="TDM-Reservation" content="1">', TDM),
    ('<meta name="tdm-reservation" content="1"><meta name="robots" content="noai">', NOAI),  # noai wins
])
def test_page_opt_out_metas(head, expected):
    pairs, rejected = _opt_out(head)
    reasons = sorted(r.reason for r in rejected)
    if expected is None:
        assert len(pairs) == 2 and reasons == [DropReason.EXTRACT_DATA_URI.value]
    else:
        # every pair refused with its key; the inline image keeps its own reason
        assert pairs == [] and reasons == sorted([expected, expected, DropReason.EXTRACT_DATA_URI.value])
        refused = [r for r in rejected if r.reason == expected]
        assert {r.image_url for r in refused} == {"http://site.test/a.jpg", "http://site.test/b.jpg"}
        assert all(r.stage == "extract" and r.detail.startswith("meta ") for r in refused)
    plain, plain_rejected = _opt_out("")
    assert {p.key for p in plain} | {r.key for r in plain_rejected} == {p.key for p in pairs} | {r.key for r in rejected}


def test_page_opt_out_details():
    _, rejected = _opt_out('<meta name="wit-curator" content="noimageai">')
    assert "meta wit-curator: noimageai" in {r.detail for r in rejected}
    _, rejected = _opt_out('<meta name="tdm-reservation" content="1"><meta name="tdm-policy" content="https://p.test/x">')
    assert "meta tdm-reservation: 1 (tdm-policy https://p.test/x)" in {r.detail for r in rejected}


def test_tdm_reservation_only_when_respected_and_our_token_from_the_config():
    assert len(_opt_out('<meta name="tdm-reservation" content="1">', spec_with(extract_spec, respect_tdmrep=False))[0]) == 2
    spec = extract_spec(CurateConfig(fetch=FetchConfig(user_agent="MyBot/2.0 (+https://me.test)", respect_tdmrep=False)))
    assert (spec.bot_token, spec.respect_tdmrep) == ("mybot", False)
    assert _opt_out('<meta name="mybot" content="noai">', spec)[0] == []
    assert len(_opt_out('<meta name="wit-curator" content="noai">', spec)[0]) == 2  # no longer our name
    assert len(_opt_out('<meta name="tdm-reservation" content="1">', spec)[0]) == 2
    default = extract_spec(CurateConfig())
    assert (default.bot_token, default.respect_tdmrep, default.target_size) == ("wit-curator", True, 256)
    sized = extract_spec(CurateConfig(resize=ResizeConfig(image_size=512)))  # srcset picks for resize.image_size
    assert sized.target_size == 512


def test_opt_out_meta_in_the_body_counts_too():
    pairs, rejected = _opt_out("", body='<meta name="robots" content="noai">' + _OPT_OUT_BODY)
    assert pairs == [] and sum(r.reason == NOAI for r in rejected) == 2


def test_licence_recorded_on_each_pair():
    cc_by, cc0 = "https://creativecommons.org/licenses/by/4.0/", "https://creativecommons.org/publicdomain/zero/1.0/"
    body = (f'<img src="/a.jpg" alt="a red circle on blue"><figure><img src="/b.jpg" alt="two blue squares">'
            f'<figcaption>by X, <a href="{cc0}">CC0</a></figcaption></figure>'
            '<script type="application/ld+json">{"@type": "ImageObject", "contentUrl": "/c.jpg",'
            ' "license": "https://creativecommons.org/licenses/by-nc/2.0/"}</script><img src="/c.jpg" alt="c c c">')
    pairs, _ = _opt_out(f'<link rel="license" href="{cc_by}">', body=body)
    assert {p.image_url.rsplit("/", 1)[1]: p.license for p in pairs} == {
        "a.jpg": "cc-by-4.0", "b.jpg": "cc0-1.0", "c.jpg": "cc-by-nc-2.0"}
    pairs, _ = _opt_out("")
    assert {p.license for p in pairs} == {""}  # the page says nothing: "" (written as "unknown")


_TAGS = st.sampled_from([
    '<meta name="robots" content="noai">', '<meta name="robots" content="noimageai, index">',
    '<meta name="googlebot" content="noai">', '<meta name="wit-curator" content="NOAI">',
    '<meta name="tdm-reservation" content="1">', '<meta name="tdm-reservation" content="0">',
    '<link rel="license" href="https://creativecommons.org/licenses/by/4.0/">',
    '<a rel="license" href="http://[::1">x</a>', '<a href="https://creativecommons.org/licenses/by-sa/3.0/de/">y</a>',
    '<script type="application/ld+json">{"@type":"ImageObject","contentUrl":"/i1.jpg","license":"CC0"}</script>',
    '<script type="application/ld+json">[[[[{"license": 1}]]]]</script>', '<script type="application/ld+json">{',
    "<figure>", "</figure>", '<img src="/i1.jpg" alt="one two three">', '<img src="/i2.jpg">', '<img alt="none">',
    '<img src="data:x">', '<img src="http://[oops/">', "<noscript>", "</noscript>",
])


@pytest.mark.fuzz
@given(st.lists(st.one_of(_TAGS, st.text(max_size=30)), max_size=25), st.booleans())
def test_fuzz_random_meta_link_script_tags_keep_every_img_accounted(parts, respect):
    html = ("<html><body>" + "".join(parts) + "</body></html>").encode("utf-8", "surrogatepass")
    spec = spec_with(extract_spec, respect_tdmrep=respect)
    pairs, rejected = extract_pairs(html, PAGE, "text/html", spec)
    keys = [p.key for p in pairs] + [r.key for r in rejected]
    assert len(keys) == len(set(keys))
    plain = extract_pairs(html.replace(b"noai", b"xxxx").replace(b"noimageai", b"xxxxxxxxx")
                          .replace(b"tdm-reservation", b"xxxxxxxxxxxxxxx"), PAGE, "text/html", spec)
    assert sorted(keys) == sorted([p.key for p in plain[0]] + [r.key for r in plain[1]])  # opt-outs lose none
    assert all(isinstance(p.license, str) for p in pairs)


# ---- deep pages, bad and over-long URLs, remote numbers (helper: parsers) ----------------------

from transforms.url_guard import MAX_URL_CHARS  # noqa: E402

BAD_URL = DropReason.EXTRACT_BAD_URL.value


@pytest.mark.parametrize("depth", [255, 300, 3000, 50_000])
def test_no_image_is_lost_after_thousands_of_unclosed_tags(depth):
    imgs = "".join(f'<h2>Part {i}</h2><img src="/{i}.jpg" alt="picture number {i}">' for i in range(4))
    html = f"<html><head><title>Deep</title></head><body>{'<div><span>' * (depth // 2)}{imgs}".encode()
    pairs, rejected = extract_pairs(html, PAGE, "", SPEC)
    assert rejected == [] and [p.image_url for p in pairs] == [f"http://site.test/{i}.jpg" for i in range(4)]
    assert [p.heading for p in pairs] == [f"Part {i}" for i in range(4)] and pairs[0].page_title == "Deep"


def test_a_figure_deep_in_a_deep_page_keeps_its_caption():
    html = ("<body>" + "<div>" * 1800 + '<figure lang="fr"><img src="/f.jpg" alt="a b c d">'
            "<figcaption>Légende</figcaption></figure>").encode()
    (pair,), _ = extract_pairs(html, PAGE, "", SPEC)
    assert (pair.figcaption, pair.lang) == ("Légende", "fr")


@pytest.mark.parametrize("src", ["http://[::1", "http://[oops/a.jpg", "//[x]/a.jpg", "http://h:99999/a.jpg",
                                 "https://h:abc/a.jpg"])
def test_a_bad_url_in_src_or_srcset_is_bad_url_never_an_exception(src):
    html = (f'<img src="{src}" alt="one"><img srcset="{src} 2x" alt="two">'
            f'<picture><source srcset="{src} 300w"><img src="/ok.jpg" alt="three"></picture>').encode()
    pairs, rejected = extract_pairs(html, PAGE, "", SPEC)
    # a candidate that cannot be a URL is left out of the choice, as an invalid descriptor is
    assert [r.reason for r in rejected] == [BAD_URL, BAD_URL]
    assert [r.detail.split(":")[0] for r in rejected] == ["unparseable URL", "no src"]
    assert [p.image_url for p in pairs] == ["http://site.test/ok.jpg"]


def test_a_bad_url_detail_says_why():
    _, rejected = extract_pairs(b'<img src="http://[::1/x.jpg"><img src="//[x]/y.jpg"><img alt="none">', PAGE, "", SPEC)
    assert [r.detail.split(":")[0] for r in rejected] == ["unparseable URL", "unparseable URL", "no src"]
    assert "Invalid IPv6 URL" in rejected[0].detail


@pytest.mark.parametrize("base_href", ["http://[::1", "http://[oops/", "//[x]/", "http://h:abc/"])
def test_a_bad_base_href_falls_back_to_the_page_url(base_href):
    html = f'<html><head><base href="{base_href}"></head><body><img src="a.jpg" alt="a b c d"></body></html>'.encode()
    (pair,), rejected = extract_pairs(html, PAGE, "", SPEC)
    assert rejected == [] and pair.image_url == "http://site.test/dir/a.jpg"


def test_a_page_url_that_does_not_parse_still_gives_its_absolute_images():
    html = b'<img src="a.jpg" alt="relative"><img src="https://cdn.test/b.jpg" alt="absolute">'
    pairs, rejected = extract_pairs(html, "http://[oops/page.html", "", SPEC)
    assert [p.image_url for p in pairs] == ["https://cdn.test/b.jpg"] and [r.reason for r in rejected] == [BAD_URL]


def test_over_long_image_urls_are_rejected_with_their_length_never_cut():
    fits = "/" + "x" * (MAX_URL_CHARS - len("http://site.test/"))
    html = f'<img src="{fits}" alt="fits"><img src="{fits}y" alt="long"><img src="{fits}?q#f" alt="long too">'.encode()
    pairs, rejected = extract_pairs(html, PAGE, "", SPEC)
    assert [len(p.image_url) for p in pairs] == [MAX_URL_CHARS]
    assert [r.reason for r in rejected] == [BAD_URL, BAD_URL]
    assert f"URL of {MAX_URL_CHARS + 1} characters, over the {MAX_URL_CHARS} limit (not cut)" in rejected[0].detail
    assert all(len(r.image_url) <= 300 and len(r.detail) <= 300 for r in rejected)


def test_the_url_limit_comes_from_the_config():
    spec = extract_spec(CurateConfig(extract=ExtractConfig(max_url_chars=40)))
    assert spec.max_url_chars == 40 and spec_with(extract_spec).max_url_chars == MAX_URL_CHARS
    pairs, rejected = extract_pairs(b'<img src="/a.jpg" alt="x"><img src="/' + b"b" * 40 + b'.jpg" alt="y">', PAGE,
                                    spec=spec, content_type="")
    assert len(pairs) == 1 and [r.reason for r in rejected] == [BAD_URL]


@pytest.mark.parametrize("value", ["²", "３００", "9" * 10_000, "1e3", "-1"])
def test_declared_sizes_read_ascii_digits_only(value):
    (pair,), _ = extract_pairs(f'<img src="/a.jpg" alt="a b" width="{value}" height="{value}px">'.encode(), PAGE, "", SPEC)
    assert (pair.declared_width, pair.declared_height) == (None, None)
