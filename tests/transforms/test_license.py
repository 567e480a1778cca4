"""transforms.license: the licence normaliser and the per-image detector (sources, scopes, bounds)."""

import json

import pytest
from hypothesis import given, strategies as st

from transforms import license as lic
from transforms.html_text import parse_html
from transforms.license import OTHER, UNKNOWN, normalise_license, page_licenses

PAGE = "https://site.test/dir/page.html"


@pytest.mark.parametrize("value, expected", [
    # Creative Commons licences: terms x versions, http/https, slash or not, deeds, legal code, ports
    ("https://creativecommons.org/licenses/by/4.0/", "cc-by-4.0"),
    ("http://creativecommons.org/licenses/by/4.0", "cc-by-4.0"),
    ("https://creativecommons.org/licenses/by-sa/3.0/", "cc-by-sa-3.0"),
    ("https://creativecommons.org/licenses/by-nd/2.5/", "cc-by-nd-2.5"),
    ("https://creativecommons.org/licenses/by-nc/2.0/", "cc-by-nc-2.0"),
    ("https://creativecommons.org/licenses/by-nc-sa/4.0/deed.en", "cc-by-nc-sa-4.0"),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/legalcode", "cc-by-nc-nd-4.0"),
    ("https://creativecommons.org/licenses/by-nc-nd/4.0/legalcode.de", "cc-by-nc-nd-4.0"),
    ("https://creativecommons.org/licenses/by/4.0/deed.en_US", "cc-by-4.0"),
    ("https://creativecommons.org/licenses/by/1.0/", "cc-by-1.0"),
    ("https://creativecommons.org/licenses/by-nd-nc/1.0/", "cc-by-nc-nd-1.0"),  # the 1.0 spelling
    ("https://creativecommons.org/licenses/by-sa/2.0/de/", "cc-by-sa-2.0-de"),  # ported: SPDX-style suffix
    ("https://creativecommons.org/licenses/by/3.0/de/deed.en", "cc-by-3.0-de"),
    ("https://creativecommons.org/licenses/by-sa/2.5/scotland/", "cc-by-sa-2.5-scotland"),
    ("https://creativecommons.org/licenses/by/3.0/igo/legalcode", "cc-by-3.0-igo"),
    ("HTTPS://CreativeCommons.org/Licenses/BY-SA/4.0/", "cc-by-sa-4.0"),
    ("https://www.creativecommons.org/licenses/by/4.0/", "cc-by-4.0"),
    ("//creativecommons.org/licenses/by-sa/4.0/", "cc-by-sa-4.0"),  # scheme-relative, as Wikipedia writes it
    ("creativecommons.org/licenses/by/2.0", "cc-by-2.0"),
    ("https://creativecommons.org/licenses/by/4.0/?ref=chooser-v1#x", "cc-by-4.0"),
    ("  https://creativecommons.org/licenses/by/4.0/  ", "cc-by-4.0"),
    # public domain tools
    ("https://creativecommons.org/publicdomain/zero/1.0/", "cc0-1.0"),
    ("http://creativecommons.org/publicdomain/zero/1.0", "cc0-1.0"),
    ("https://creativecommons.org/publicdomain/zero/1.0/deed.fr", "cc0-1.0"),
    ("https://creativecommons.org/publicdomain/mark/1.0/", "cc-pdm-1.0"),
    ("https://creativecommons.org/licenses/publicdomain/", "cc-pddc"),
    # creativecommons.org URLs that are no licence we know
    ("https://creativecommons.org/licenses/by/5.0/", OTHER),
    ("https://creativecommons.org/licenses/by-xx/4.0/", OTHER),
    ("https://creativecommons.org/licenses/sa/1.0/", OTHER),
    ("https://creativecommons.org/publicdomain/zero/2.0/", OTHER),
    ("https://creativecommons.org/licenses/by/4.0/some/thing/else", OTHER),
    ("https://creativecommons.org/about/", OTHER),
    # other licences mapped reliably
    ("https://opensource.org/licenses/MIT", "mit"),
    ("https://www.apache.org/licenses/LICENSE-2.0", "apache-2.0"),
    ("http://www.apache.org/licenses/LICENSE-2.0.html", "apache-2.0"),
    ("https://opendatacommons.org/licenses/odbl/1.0/", "odbl-1.0"),
    ("https://opendatacommons.org/licenses/by/1.0/", "odc-by-1.0"),
    ("https://opendatacommons.org/licenses/pddl/1.0/", "pddl-1.0"),
    ("https://spdx.org/licenses/CC-BY-4.0.html", "cc-by-4.0"),
    # names (JSON-LD values, SPDX ids)
    ("CC BY-SA 4.0", "cc-by-sa-4.0"),
    ("CC-BY-4.0", "cc-by-4.0"),
    ("cc by nc nd 3.0", "cc-by-nc-nd-3.0"),
    ("Attribution 4.0 International (CC BY 4.0)", "cc-by-4.0"),
    ("CC-BY-3.0-DE", "cc-by-3.0-de"),
    ("CC0", "cc0-1.0"),
    ("CC0 1.0 Universal", "cc0-1.0"),
    ("Public Domain Mark 1.0", "cc-pdm-1.0"),
    ("MIT", "mit"),
    ("Apache-2.0", "apache-2.0"),
    ("CC BY-SA", OTHER),  # no version: not guessed
    ("All rights reserved", OTHER),
    ("public domain", OTHER),
    # URLs we cannot map, and things that are no URL
    ("https://example.com/license", OTHER),
    ("/license.html", OTHER),
    ("https://www.gnu.org/copyleft/fdl.html", OTHER),
    ("mailto:legal@site.test", OTHER),
    ("javascript:void(0)", OTHER),
    ("http://[::1", OTHER),  # urlsplit raises on a bad IPv6 literal
    ("https://creativecommons.org:99999/licenses/by/4.0/", "cc-by-4.0"),
    ("x" * 5000, OTHER),
    (42, OTHER),
    ({"a": 1}, OTHER),
    ("", ""),
    ("   ", ""),
    (None, ""),
])
def test_normalise_license(value, expected):
    assert normalise_license(value, PAGE) == expected


def _licenses(body: str, head: str = "", url: str = PAGE):
    doc = parse_html(f"<html><head>{head}</head><body>{body}</body></html>".encode())
    found = page_licenses(doc, url)
    return {img.get("src"): found.for_image(img, (lic.absolute_url(url, img.get("src")),))
            for img in doc.iter("img")}


def _jsonld(data) -> str:
    return f'<script type="application/ld+json">{json.dumps(data)}</script>'


CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC_SA = "https://creativecommons.org/licenses/by-sa/4.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"


@pytest.mark.parametrize("name, head, body, expected", [
    ("nothing said", "", '<img src="a.jpg">', {"a.jpg": UNKNOWN}),
    ("link rel=license in head", f'<link rel="license" href="{CC_BY}">', '<img src="a.jpg">', {"a.jpg": "cc-by-4.0"}),
    ("a rel=license in the footer", "", f'<img src="a.jpg"><footer><a rel="license" href="{CC_SA}">CC</a></footer>',
     {"a.jpg": "cc-by-sa-4.0"}),
    ("rel is a token list, any case", "", f'<img src="a.jpg"><a rel="noopener LICENSE" href="{CC_SA}">x</a>',
     {"a.jpg": "cc-by-sa-4.0"}),
    ("area rel=license", "", f'<img src="a.jpg"><map><area rel="license" href="{CC0}"></map>', {"a.jpg": "cc0-1.0"}),
    ("rel=license to an unmappable page", '<link rel="license" href="/terms">', '<img src="a.jpg">',
     {"a.jpg": OTHER}),
    ("first rel=license of the page wins", f'<link rel="license" href="{CC_BY}">',
     f'<img src="a.jpg"><a rel="license" href="{CC_SA}">x</a>', {"a.jpg": "cc-by-4.0"}),
    ("plain CC link, one licence", "", f'<img src="a.jpg"><p>Text under <a href="{CC_BY}">CC BY</a></p>',
     {"a.jpg": "cc-by-4.0"}),
    ("plain CC links disagreeing say nothing", "",
     f'<img src="a.jpg"><a href="{CC_BY}">a</a><a href="{CC_SA}">b</a>', {"a.jpg": UNKNOWN}),
    ("a CC link that is no licence is ignored", "", '<img src="a.jpg"><a href="https://creativecommons.org/donate">d</a>',
     {"a.jpg": UNKNOWN}),
    ("rel=license beats plain CC links", "",
     f'<img src="a.jpg"><a href="{CC0}">x</a><a rel="license" href="{CC_SA}">y</a>', {"a.jpg": "cc-by-sa-4.0"}),
    ("figure link applies to its images only", f'<link rel="license" href="{CC_BY}">',
     f'<img src="a.jpg"><figure><img src="b.jpg"><figcaption>Photo, <a href="{CC_SA}">CC BY-SA</a>'
     '</figcaption></figure>', {"a.jpg": "cc-by-4.0", "b.jpg": "cc-by-sa-4.0"}),
    ("a figure's licence is not the page's", "",
     f'<img src="a.jpg"><figure><img src="b.jpg"><a rel="license" href="{CC0}">x</a></figure>',
     {"a.jpg": UNKNOWN, "b.jpg": "cc0-1.0"}),
    ("rel=license in a figure beats a plain CC link there", "",
     f'<figure><img src="b.jpg"><a href="{CC_BY}">x</a><a rel="license" href="{CC_SA}">y</a></figure>',
     {"b.jpg": "cc-by-sa-4.0"}),
    ("nested figures: the nearest with a licence", "",
     f'<figure><a rel="license" href="{CC_BY}">o</a><figure><img src="b.jpg"></figure>'
     f'<figure><img src="c.jpg"><a rel="license" href="{CC0}">i</a></figure></figure>',
     {"b.jpg": "cc-by-4.0", "c.jpg": "cc0-1.0"}),
    ("JSON-LD ImageObject names the image", f'<link rel="license" href="{CC_BY}">',
     '<img src="a.jpg"><img src="b.jpg">' + _jsonld({"@context": "https://schema.org", "@type": "ImageObject",
                                                    "contentUrl": "https://site.test/dir/b.jpg", "license": CC0}),
     {"a.jpg": "cc-by-4.0", "b.jpg": "cc0-1.0"}),
    ("JSON-LD beats the figure", "",
     f'<figure><img src="b.jpg"><a rel="license" href="{CC_BY}">x</a></figure>'
     + _jsonld({"@type": "ImageObject", "url": "b.jpg", "license": CC_SA}), {"b.jpg": "cc-by-sa-4.0"}),
    ("JSON-LD in @graph, licence object, relative contentUrl", "",
     '<img src="/img/b.jpg">' + _jsonld({"@context": "https://schema.org", "@graph": [
         {"@type": "WebPage", "name": "x"},
         {"@type": ["ImageObject", "Thing"], "contentUrl": "/img/b.jpg", "license": {"@id": CC_SA}}]}),
     {"/img/b.jpg": "cc-by-sa-4.0"}),
    ("JSON-LD nested ImageObject (Article.image), licence url key, list of urls", "",
     '<img src="b.jpg">' + _jsonld({"@type": "Article", "image": {
         "@type": "schema:ImageObject", "contentUrl": ["https://cdn.test/x.jpg", "https://site.test/dir/b.jpg"],
         "license": {"@type": "CreativeWork", "url": CC0}}}), {"b.jpg": "cc0-1.0"}),
    ("JSON-LD licence as a name", "",
     '<img src="b.jpg">' + _jsonld([{"@type": "ImageObject", "contentUrl": "b.jpg", "license": "CC BY 4.0"}]),
     {"b.jpg": "cc-by-4.0"}),
    ("JSON-LD ImageObject for another image", "",
     '<img src="b.jpg">' + _jsonld({"@type": "ImageObject", "contentUrl": "other.jpg", "license": CC0}),
     {"b.jpg": UNKNOWN}),
    ("JSON-LD page-level licence", "",
     '<img src="b.jpg">' + _jsonld({"@type": "WebPage", "license": CC_SA}), {"b.jpg": "cc-by-sa-4.0"}),
    ("rel=license beats a JSON-LD page licence", f'<link rel="license" href="{CC_BY}">',
     '<img src="b.jpg">' + _jsonld({"@type": "WebPage", "license": CC_SA}), {"b.jpg": "cc-by-4.0"}),
    ("a nested non-image licence is not the page's", "",
     '<img src="b.jpg">' + _jsonld({"@type": "WebPage", "mentions": {"@type": "Book", "license": CC0}}),
     {"b.jpg": UNKNOWN}),
    ("script type with parameters, any case", "",
     '<img src="b.jpg"><script type="Application/LD+JSON; charset=utf-8">'
     f'{{"@type": "ImageObject", "contentUrl": "b.jpg", "license": "{CC0}"}}</script>', {"b.jpg": "cc0-1.0"}),
    ("not JSON-LD, broken JSON", "",
     f'<img src="b.jpg"><script type="application/json">{{"license": "{CC0}"}}</script>'
     '<script type="application/ld+json">{"@type": "ImageObject", </script>', {"b.jpg": UNKNOWN}),
])
def test_page_licenses(name, head, body, expected):
    assert _licenses(body, head) == expected, name


def test_jsonld_image_also_matches_by_plain_src():
    """The chosen source may be a srcset variant; the ImageObject usually names the plain src."""
    doc = parse_html(b'<img src="b.jpg" srcset="b-800.jpg 800w">' + _jsonld(
        {"@type": "ImageObject", "contentUrl": "https://site.test/dir/b.jpg", "license": CC0}).encode())
    img = next(doc.iter("img"))
    found = page_licenses(doc, PAGE)
    assert found.for_image(img, ("https://site.test/dir/b-800.jpg", "https://site.test/dir/b.jpg")) == "cc0-1.0"
    assert found.for_image(img, ("https://site.test/dir/b-800.jpg#frag",)) == UNKNOWN


def test_may_declare_license_precheck():
    assert lic.may_declare_license(b'<link rel="license" href="/x">')
    assert lic.may_declare_license(b'<a href="https://creativecommons.org/publicdomain/zero/1.0/">')
    assert not lic.may_declare_license(b"<html><body><img src=a.jpg></body></html>")


def test_hostile_pages_are_bounded_and_never_raise():
    deep = "[" * 200000 + "]" * 200000  # json cannot parse it (RecursionError): skipped
    deep_objects = '{"a":' * 5000 + '{"@type": "ImageObject", "contentUrl": "b.jpg", "license": "CC0"}' + "}" * 5000
    huge = json.dumps({"@type": "ImageObject", "contentUrl": "b.jpg", "license": "CC0",
                       "filler": "x" * (lic.MAX_JSONLD_BYTES + 1)})
    many = _jsonld({"@type": "WebPage"}) * (lic.MAX_JSONLD_SCRIPTS + 5)
    late = _jsonld({"@type": "ImageObject", "contentUrl": "c.jpg", "license": "CC0"})
    body = ('<img src="b.jpg"><img src="c.jpg">'
            f'<script type="application/ld+json">{deep}</script>'
            f'<script type="application/ld+json">{deep_objects}</script>'
            f'<script type="application/ld+json">{huge}</script>' + many + late
            + '<a rel="license" href="http://[::1">x</a>' * (lic.MAX_LINKS + 10))
    assert _licenses(body) == {"b.jpg": OTHER, "c.jpg": OTHER}  # past the script cap; the bad links: other


def test_many_image_objects_are_capped():
    objects = [{"@type": "ImageObject", "contentUrl": f"i{n}.jpg", "license": "CC0"} for n in range(5000)]
    doc = parse_html(("<img src='i1.jpg'>" + _jsonld(objects)).encode())
    found = page_licenses(doc, PAGE)
    assert len(found.images) == lic.MAX_IMAGE_OBJECTS and found.for_image(next(doc.iter("img")),
                                                                         ("https://site.test/dir/i1.jpg",)) == "cc0-1.0"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
    | st.sampled_from(["ImageObject", "@graph", "license", CC_BY, "b.jpg"]),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["@type", "@graph", "@id", "license", "contentUrl", "url", "name", "image"])
        | st.text(max_size=8), children, max_size=5),
    max_leaves=30)


@pytest.mark.fuzz
@given(st.text(max_size=300))
def test_fuzz_any_text_as_a_licence_url(text):
    result = normalise_license(text, PAGE)
    assert isinstance(result, str) and result == result.lower()
    normalise_license("https://creativecommons.org/licenses/" + text, PAGE)
    normalise_license(text, "")


@pytest.mark.fuzz
@given(JSON_VALUES, st.text(max_size=200))
def test_fuzz_any_jsonld_never_raises(data, junk):
    scripts = _jsonld(data) + f'<script type="application/ld+json">{junk}</script>'
    found = _licenses('<img src="b.jpg">' + scripts)
    assert set(found) == {"b.jpg"} and isinstance(found["b.jpg"], str) and found["b.jpg"]
