"""transforms.svg: SVG checked, cleaned and rendered at the target size in a bounded worker;
SVG with ``resize.svg`` off is not downloaded (fetch.svg_disabled)."""

import base64
import io
import struct
import time
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from pipeline.records import AltPair, DropReason
from transforms import svg
from transforms.imaging import DecodeError, resize_image

X = 'xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
SPEC = spec_with(resize_spec, image_size=64, mode="border", encode_format="png", svg=True)


def _svg(body: str, size: str = 'width="40" height="20"') -> bytes:
    return f"<svg {X} {size}>{body}</svg>".encode()


def _refused(data: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        svg.clean(data)
    assert info.value.reason == DropReason.IMAGE_SVG_REFUSED, info.value.detail
    return info.value.detail


def _pixels(result) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(result.data)).convert("RGB")).astype(int)


@pytest.fixture
def green_png(tmp_path):
    path = tmp_path / "secret.png"
    Image.new("RGB", (10, 10), (0, 255, 0)).save(path)
    return str(path)


# -- entities and DOCTYPE --------------------------------------------------------------


@pytest.mark.parametrize("doc", [
    '<!DOCTYPE svg [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]><svg {X}><text>&b;</text></svg>',
    '<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]><svg {X}><text>&x;</text></svg>',
    '<!DOCTYPE svg [<!ENTITY ns "http://www.w3.org/2000/svg">]><svg xmlns="&ns;"/>',  # Illustrator's kind
    '<!DOCTYPE svg [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><svg {X}/>',
])
def test_entity_declarations_are_refused(doc):
    assert "entit" in _refused(doc.replace("{X}", X).encode())


def test_billion_laughs_is_refused_quickly():
    laughs = "".join(f'<!ENTITY l{i} "' + f"&l{i - 1};" * 10 + '">' for i in range(1, 10))
    doc = f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY l0 "ha">{laughs}]><svg {X}><text>&l9;</text></svg>'
    start = time.perf_counter()
    _refused(doc.encode())
    assert time.perf_counter() - start < 1.0


def test_public_doctype_without_entities_is_accepted_and_dropped():
    doc = ('<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
           '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">').encode() + _svg("<rect width='9' height='9'/>")
    clean = svg.clean(doc)
    assert "DOCTYPE" not in clean.text and (clean.width, clean.height) == (40, 20)


# -- external references -----------------------------------------------------------------


@pytest.mark.parametrize("attr", ["href", "xlink:href"])
@pytest.mark.parametrize("ref", ["http://127.0.0.1:9/a.png", "file:///etc/passwd", "/etc/passwd", "secret.png",
                                 "//example.com/a.png", " FILE:///x.png"])
def test_external_hrefs_are_stripped(attr, ref):
    clean = svg.clean(_svg(f'<image {attr}="{ref}" width="9" height="9"/><use href="#r"/><rect id="r"/>'))
    assert clean.stripped == 1
    assert ref.strip() not in clean.text and 'href="#r"' in clean.text


def test_css_references_are_stripped_and_fragments_kept():
    body = ('<style>@import url(http://127.0.0.1:9/x.css); rect { fill: url("http://127.0.0.1:9/p.svg#g") }'
            ' circle { fill: url(#grad) }</style>'
            '<rect style="fill:url(file:///etc/x.svg#p)" width="9" height="9"/><circle fill="url(#grad)" r="3"/>')
    clean = svg.clean(_svg(body))
    assert clean.stripped == 3
    assert "127.0.0.1" not in clean.text and "file:" not in clean.text and "@import" not in clean.text
    assert clean.text.count("url(#grad)") == 2


def _png_uri(w: int, h: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (0, 0, 255)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_embedded_raster_is_kept_and_embedded_svg_stripped():
    inner = base64.b64encode(_svg("<image href='/etc/passwd'/>")).decode()
    clean = svg.clean(_svg(f'<image href="{_png_uri(4, 4)}" width="9" height="9"/>'
                           f'<image href="data:image/svg+xml;base64,{inner}" width="9" height="9"/>'))
    assert clean.stripped == 1 and "image/png" in clean.text and "svg+xml" not in clean.text


def test_embedded_decompression_bomb_is_refused():
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 60000, 60000, 8, 2, 0, 0, 0)) + chunk(b"IEND", b"")
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert "embedded" in _refused(_svg(f'<image href="{uri}" width="9" height="9"/>'))


def test_a_local_file_named_by_href_never_reaches_the_output(green_png, tmp_path, monkeypatch):
    """The renderer reads local files by path (measured): the reference must not get to it."""
    monkeypatch.chdir(tmp_path)
    for ref in (green_png, "secret.png", "file://" + green_png):
        data = _svg(f'<rect width="40" height="20" fill="red"/><image href="{ref}" width="40" height="20"/>')
        px = _pixels(resize_image(data, SPEC))
        centre = px[32, 32]
        assert centre[0] > 200 and centre[1] < 60, (ref, centre)  # red, not the file's green


# -- size, shape and time bounds ----------------------------------------------------------


def test_render_size_is_the_target_not_the_declared_size(monkeypatch):
    asked = []
    real = svg.POOL.render

    def spy(text, width, height, timeout=None):
        asked.append((width, height))
        return real(text, width, height, timeout)

    monkeypatch.setattr(svg.POOL, "render", spy)
    data = _svg('<rect width="100%" height="100%" fill="red"/>', 'width="100000000" height="50000000"')
    res = resize_image(data, spec_with(resize_spec, image_size=64, mode="keep_ratio_largest", encode_format="png",
                                       svg=True))
    assert asked == [(64, 32)]
    assert (res.width, res.height, res.original_width, res.original_height) == (64, 32, 100000000, 50000000)


@pytest.mark.parametrize("mode,size,expected", [
    ("border", (300, 150), (64, 32)), ("keep_ratio", (300, 150), (128, 64)), ("center_crop", (300, 150), (128, 64)),
    ("keep_ratio_largest", (10, 20), (32, 64)),  # a vector is rendered up to the target
    ("no", (30, 20), (30, 20)), ("no", (3000, 2000), (64, 43)),  # mode no: at most image_size
])
def test_render_size_per_mode(mode, size, expected):
    spec = spec_with(resize_spec, image_size=64, mode=mode, resize_only_if_bigger=True, svg=True)
    assert svg.render_size(*size, spec) == expected


@pytest.mark.parametrize("attrs,expected", [
    ('width="40" height="20"', (40, 20)), ('width="1in" height="2cm"', (96, 2 * 96 / 2.54)),
    ('viewBox="0 0 300 100"', (300, 100)), ('width="100%" viewBox="0,0,30,10"', (30, 10)),
    ('width="60" viewBox="0 0 30 10"', (60, 20)), ("", (100, 100)),
])
def test_intrinsic_size(attrs, expected):
    clean = svg.clean(_svg("", attrs))
    assert (clean.width, clean.height) == pytest.approx(expected)


@pytest.mark.parametrize("attrs", ['width="0" height="10"', 'width="-5" height="5"', 'viewBox="0 0 0 0"'])
def test_no_usable_size_is_undecodable(attrs):
    with pytest.raises(DecodeError) as info:
        svg.clean(_svg("", attrs))
    assert info.value.reason == DropReason.IMAGE_UNDECODABLE


def test_use_bomb_is_refused():
    defs = '<rect id="u0" width="1" height="1"/>' + "".join(
        f'<g id="u{i}">' + f'<use href="#u{i - 1}"/>' * 10 + "</g>" for i in range(1, 8))
    assert "<use>" in _refused(_svg(f"<defs>{defs}</defs><use href='#u7'/>"))


def test_use_cycle_is_refused():
    assert "<use>" in _refused(_svg('<g id="a"><use href="#b"/></g><g id="b"><use href="#a"/></g>'))


def test_deep_nesting_and_too_many_elements_are_refused():
    assert "nested" in _refused(_svg("<g>" * (svg.MAX_DEPTH + 1) + "</g>" * (svg.MAX_DEPTH + 1)))
    assert "elements" in _refused(_svg("<rect/>" * (svg.MAX_ELEMENTS + 1)))


def test_a_slow_render_is_stopped_at_the_timeout(monkeypatch):
    monkeypatch.setattr(svg, "RENDER_TIMEOUT_S", 0.3)
    masks = "".join(f'<mask id="m{i}"><rect width="256" height="256" fill="white" mask="url(#m{i - 1})"/></mask>'
                    for i in range(1, 200))
    data = _svg(masks + '<mask id="m0"><rect width="9" height="9" fill="white"/></mask>'
                '<rect width="256" height="256" mask="url(#m199)"/>', 'width="256" height="256"')
    start = time.perf_counter()
    with pytest.raises(DecodeError) as info:
        resize_image(data, spec_with(resize_spec, image_size=256, svg=True))
    assert info.value.reason == DropReason.IMAGE_SVG_REFUSED and "render over" in info.value.detail
    assert time.perf_counter() - start < 3.0
    assert resize_image(_svg("<rect width='9' height='9'/>"), SPEC).width == 64  # a fresh worker serves the next


def test_a_renderer_crash_costs_one_svg():
    """resvg overflows its stack on deeply nested groups (SIGSEGV): the worker dies, not us."""
    deep = _svg('<g opacity="0.9">' * 250 + "<rect width='9' height='9'/>" + "</g>" * 250).decode()
    with pytest.raises(DecodeError) as info:
        svg.POOL.render(deep, 64, 32)
    assert info.value.reason == DropReason.IMAGE_SVG_REFUSED and "died" in info.value.detail
    assert resize_image(_svg("<rect width='9' height='9'/>"), SPEC).height == 64


# -- rendering and decoding ------------------------------------------------------------------


def test_renders_with_the_image_pipeline(monkeypatch):
    data = _svg('<rect width="20" height="20" fill="#ff0000"/><rect x="20" width="20" height="20" fill="#0000ff"/>')
    res = resize_image(data, SPEC)
    px = _pixels(res)
    assert (res.width, res.height, res.original_width, res.original_height) == (64, 64, 40, 20)
    assert px[32, 10][0] > 200 and px[32, 54][2] > 200  # red left, blue right
    assert (px[2, 32] > 240).all()  # the border's white padding (and transparency on white)
    assert len(res.phash) == 16 and res.exif == ""


def test_svg_without_namespace_is_rendered():
    res = resize_image(b'<?xml version="1.0" ?><svg width="20" height="20"><rect width="20" height="20" '
                       b'fill="red"/></svg>', SPEC)
    assert _pixels(res)[32, 32][0] > 200


def test_svg_off_leaves_svg_undecodable():
    with pytest.raises(DecodeError) as info:
        resize_image(_svg("<rect width='9' height='9'/>"), spec_with(resize_spec, image_size=64))
    assert info.value.reason == DropReason.IMAGE_UNDECODABLE


@pytest.mark.parametrize("data", [b"<svg", b"<?xml version='1.0'?><html/>", _svg("<rect>")[:-3],
                                  b"<svg xmlns='http://www.w3.org/2000/svg'>&nbsp;</svg>"])
def test_not_svg_or_not_well_formed_is_undecodable(data):
    with pytest.raises(DecodeError) as info:
        svg.clean(data)
    assert info.value.reason == DropReason.IMAGE_UNDECODABLE


@pytest.mark.parametrize("head,expected", [(b"<svg ", True), (b"\xef\xbb\xbf  <?xml version='1.0'?><svg", True),
                                           (b"<!-- c --><svg", True), (b"<!DOCTYPE svg><svg", True),
                                           (b"<html><svg", False), (b"\x89PNG", False)])
def test_looks_like_svg(head, expected):
    assert svg.looks_like_svg(head) is expected


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given((st.binary(max_size=300) | st.sampled_from([
    _svg('<image href="x"/><use href="#y"/>'), _svg("<g>" * 70 + "</g>" * 70),
    b'<!DOCTYPE svg [<!ENTITY a "b">]><svg/>'])).flatmap(
    lambda base: st.tuples(st.just(base), st.integers(0, max(0, len(base) - 1)), st.binary(max_size=8))))
def test_clean_never_raises_anything_but_a_decode_error(case):
    base, at, junk = case
    data = base[:at] + junk + base[at + len(junk):]
    try:
        clean = svg.clean(data)
    except DecodeError as err:
        assert err.reason in (DropReason.IMAGE_SVG_REFUSED, DropReason.IMAGE_UNDECODABLE)
    else:
        assert 'href="x"' not in clean.text and "<!ENTITY" not in clean.text


# -- fetch: SVG off is not downloaded ------------------------------------------------------


def test_svg_content_type_is_not_downloaded_when_svg_is_off(scripted_server):
    import dataclasses

    from pipeline.specs import client_settings
    from tests.default_specs import spec_with
    from transforms.fetch import SVG_TYPES, fetch_image
    from transforms.http_client import HttpClient

    base, routes, _hits = scripted_server
    body = _svg("<rect/>" * 200_000)  # 1.4 MB: read, it would show in the time and the rejection
    routes["/a.svg"] = (200, {"Content-Type": "image/svg+xml; charset=utf-8"}, body)
    routes["/b.svg"] = (200, {"Content-Type": "text/plain"}, _svg("<rect/>"))  # sniffed
    settings_ = spec_with(client_settings, allow_private_networks=True, retries=0)
    pair = AltPair(key="k", page_url=base + "/", image_url=base + "/a.svg", caption="c")
    off = HttpClient(dataclasses.replace(settings_, refuse_types=SVG_TYPES))
    on = HttpClient(settings_)
    try:
        rej = fetch_image(off, pair, svg=False)
        assert rej.reason == DropReason.FETCH_SVG_DISABLED.value and "image/svg+xml" in rej.detail
        sniffed = dataclasses.replace(pair, image_url=base + "/b.svg")
        assert fetch_image(off, sniffed, svg=False).reason == DropReason.FETCH_UNSUPPORTED.value
        got = fetch_image(on, pair, svg=True)
        assert got.mime == "image/svg+xml" and got.data == body
    finally:
        off.close()
        on.close()
