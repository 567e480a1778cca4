"""filters.short_caption: a short caption (or one echoing the file name) is judged with its image."""

import dataclasses
import io

import pytest
from PIL import Image

from filters.base import first_failure
from filters.short_caption import (ShortCaptionRule, content_area, filename_echo, short_caption_rules,
                                   short_caption_verdict, thumbnail_bpp)
from pipeline.config import CurateConfig
from pipeline.records import AltPair, BlobRef, DropReason, ResizedImage
from pipeline.specs import caption_spec, resize_spec
from transforms.imaging import resize_image

SPEC = caption_spec(CurateConfig())


def _photo(size=(400, 300)) -> bytes:
    import numpy as np

    rng = np.random.default_rng(0)
    pixels = np.clip(rng.normal(128, 50, (size[1], size[0], 3)), 0, 255).astype("uint8")
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _flat(size=(400, 300)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(out, "PNG")
    return out.getvalue()


def _resized(data: bytes, caption: str, url: str = "http://s/images/pic.png") -> ResizedImage:
    res = resize_image(data, resize_spec(CurateConfig()))
    pair = AltPair(key="k", page_url="http://s/p.html", image_url=url, caption=caption)
    return ResizedImage(pair=pair, data=res.data, ext="jpg", width=res.width, height=res.height,
                        original_width=res.original_width, original_height=res.original_height, sha256="s")


def test_content_area_leaves_the_border_out():
    assert content_area(256, 256, 400, 100) == 256 * 64  # border mode: a 4:1 picture fills a quarter
    assert content_area(256, 192, 400, 300) == 256 * 192
    assert content_area(0, 0, 10, 10) == 0.0 and thumbnail_bpp(100, 0, 0, 0, 0) == 0.0


def test_photo_costs_more_bits_than_a_flat_image():
    photo, flat = _resized(_photo(), "x"), _resized(_flat(), "x")
    bpp = lambda r: thumbnail_bpp(len(r.data), r.width, r.height, r.original_width, r.original_height)  # noqa: E731
    assert bpp(photo) > 4 * SPEC.short_min_bpp > bpp(flat)


@pytest.mark.parametrize("caption,side,bpp,expected", [
    ("A banana.", 300, 2.0, None),                               # short, on a picture: kept
    ("Home", 24, 0.6, DropReason.CAPTION_TOO_SHORT),              # short, on an icon
    ("blue sky", 300, 0.1, DropReason.CAPTION_TOO_SHORT),         # short, on a flat image
    ("A cow in a field", 24, 0.1, None),                          # long enough: not judged here
])
def test_short_caption_verdict(caption, side, bpp, expected):
    verdict = short_caption_verdict(caption, "http://s/x.png", side, bpp, SPEC)
    assert (verdict[0] if verdict else None) == expected


def test_file_name_echo_is_judged_like_a_short_caption():
    icon = "http://k/images/icons/add_line_24.png"
    assert filename_echo("add line 24", icon) and filename_echo("plot ncut", "http://x/sphx_glr_plot_ncut_001.png")
    assert not filename_echo("A banana.", "http://t/banana.png")
    assert not filename_echo("A colorful toy tow truck.", "http://t/towTruck.png")
    assert short_caption_verdict("add line 24", icon, 24, 0.6, SPEC)[0] == DropReason.CAPTION_TOO_SHORT
    assert short_caption_verdict("board setup custom rules", "http://k/board_setup_custom_rules.png",
                                 627, 2.2, SPEC) is None


def test_rule_on_resized_images_inline_and_spilled_agree():
    photo = _resized(_photo(), "A banana.")
    flat = _resized(_flat(), "A banana.")
    rule = ShortCaptionRule(SPEC)
    assert rule.check(photo) is None
    assert rule.check(flat)[0] == DropReason.CAPTION_TOO_SHORT
    for image in (photo, flat):
        spilled = dataclasses.replace(image, data=b"", blob=BlobRef("/nonexistent", 0, len(image.data)))
        assert rule.check(spilled) == rule.check(image)  # only the byte count is read


def test_icon_with_a_short_caption_is_dropped_and_detail_says_why():
    icon = _resized(_photo((24, 24)), "Home")
    reason, detail = first_failure(short_caption_rules(SPEC), icon)
    assert reason == DropReason.CAPTION_TOO_SHORT and "24 px" in detail


def test_a_bug_in_the_rule_is_a_caption_internal_error(monkeypatch):
    import filters.short_caption as mod

    monkeypatch.setattr(mod, "thumbnail_bpp", lambda *a: 1 / 0)
    verdict = first_failure(short_caption_rules(SPEC), _resized(_flat(), "A banana."))
    assert verdict[0] == DropReason.CAPTION_INTERNAL
