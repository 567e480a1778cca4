import io

import pytest
from PIL import Image

from pipeline.specs import resize_spec
from tests.default_specs import spec_with
from pipeline.records import DropReason
from transforms.resize import DecodeError, resize_image, target_size


def _jpeg(w, h, colour=(200, 30, 30), mode="RGB", fmt="JPEG", **save):
    img = Image.new(mode, (w, h), colour if mode != "P" else 3)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


@pytest.mark.parametrize("mode,src,expected", [
    ("no", (640, 480), (640, 480)),
    ("keep_ratio", (640, 480), (341, 256)),
    ("keep_ratio_largest", (640, 480), (256, 192)),
    ("center_crop", (640, 480), (256, 256)),
    ("border", (640, 480), (256, 256)),
    ("border", (100, 50), (256, 256)),
    ("center_crop", (300, 900), (256, 256)),
])
def test_output_sizes_follow_img2dataset_modes(mode, src, expected):
    res = resize_image(_jpeg(*src), spec_with(resize_spec, image_size=256, mode=mode))
    assert (res.width, res.height) == expected
    assert (res.original_width, res.original_height) == src
    with Image.open(io.BytesIO(res.data)) as out:
        assert out.size == expected and out.format == "JPEG"


def test_resize_only_if_bigger_does_not_upscale():
    only_bigger = spec_with(resize_spec, image_size=256, mode="keep_ratio", resize_only_if_bigger=True)
    assert target_size(100, 50, only_bigger) == (100, 50)
    assert target_size(100, 50, spec_with(resize_spec, image_size=256, mode="keep_ratio")) == (512, 256)


def test_border_pads_white():
    spec = spec_with(resize_spec, image_size=64, mode="border", encode_format="png")
    res = resize_image(_jpeg(200, 50, colour=(0, 0, 0)), spec)
    with Image.open(io.BytesIO(res.data)) as out:
        assert out.getpixel((32, 1)) == (255, 255, 255)
        assert out.getpixel((32, 32))[0] < 30


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "L"])
def test_modes_become_rgb(mode):
    colour = {"RGBA": (10, 20, 30, 0), "LA": (10, 0), "CMYK": (0, 0, 0, 0), "L": 128}.get(mode, None)
    fmt = "JPEG" if mode in ("CMYK", "L") else "PNG"
    data = _jpeg(64, 64, colour=colour, mode=mode, fmt=fmt)
    res = resize_image(data, spec_with(resize_spec, image_size=32, mode="center_crop", encode_format="png"))
    with Image.open(io.BytesIO(res.data)) as out:
        assert out.mode == "RGB"
        if mode in ("RGBA", "LA"):  # fully transparent composited on white
            assert out.getpixel((16, 16)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (80, 40), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    res = resize_image(buf.getvalue(), spec_with(resize_spec, image_size=40, mode="keep_ratio_largest"))
    assert (res.original_width, res.original_height) == (40, 80)
    assert (res.width, res.height) == (20, 40)


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    res = resize_image(buf.getvalue(), spec_with(resize_spec, image_size=40, mode="no", encode_format="png"))
    with Image.open(io.BytesIO(res.data)) as out:
        r, g, _ = out.getpixel((20, 20))
        assert r > 200 and g < 50


def test_large_jpeg_uses_reduced_decoding_and_keeps_size():
    res = resize_image(_jpeg(2400, 1600), spec_with(resize_spec, image_size=256, mode="keep_ratio"))
    assert (res.width, res.height) == (384, 256)


@pytest.mark.parametrize("data", [b"", b"not an image", _jpeg(64, 64)[:300]])
def test_undecodable(data):
    with pytest.raises(DecodeError) as err:
        resize_image(data, spec_with(resize_spec))
    assert err.value.reason == DropReason.IMAGE_UNDECODABLE


def test_pixel_limit_checked_before_decode():
    with pytest.raises(DecodeError) as err:
        resize_image(_jpeg(300, 300), spec_with(resize_spec, max_pixels=10_000))
    assert err.value.reason == DropReason.IMAGE_TOO_MANY_PIXELS


def test_deterministic_bytes():
    data = _jpeg(500, 333)
    assert resize_image(data, spec_with(resize_spec)).data == resize_image(data, spec_with(resize_spec)).data


def _photo(w=900, h=600, seed=3):
    """Smooth gradients with detail: what the filters differ on."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) % 97) * 2], axis=-1).astype(np.float64)
    noisy = np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def _psnr(a: bytes, b: bytes) -> float:
    import numpy as np

    x = np.asarray(Image.open(io.BytesIO(a)).convert("RGB"), dtype=np.float64)
    y = np.asarray(Image.open(io.BytesIO(b)).convert("RGB"), dtype=np.float64)
    return float(10 * np.log10(255.0 ** 2 / max(((x - y) ** 2).mean(), 1e-9)))


def test_every_resample_filter_gives_the_same_picture_and_hashes():
    data = _photo()
    outs = {f: resize_image(data, spec_with(resize_spec, image_size=256, mode="border", resample=f))
            for f in ("lanczos", "bicubic", "bilinear", "box")}
    assert {(o.width, o.height) for o in outs.values()} == {(256, 256)}
    for name in ("bicubic", "bilinear", "box"):
        assert _psnr(outs["lanczos"].data, outs[name].data) > 30, name  # same picture, other filter
    assert outs["bicubic"].data != outs["lanczos"].data  # the option is really used
    assert all(len(o.phash) == 16 and len(o.colour_sig) == 24 for o in outs.values())


def test_resized_image_carries_the_exif_text_and_svg_when_on():
    import json

    from pipeline.records import AltPair, FetchedImage, Rejection
    from transforms.resize import resize_fetched

    exif = Image.Exif()
    exif[0x010F] = "Nikon"
    buf = io.BytesIO()
    Image.new("RGB", (40, 30)).save(buf, format="JPEG", exif=exif.tobytes())
    pair = AltPair(key="k", page_url="p", image_url="i", caption="c")
    out = resize_fetched(FetchedImage(pair=pair, data=buf.getvalue(), final_url="i", mime="image/jpeg"),
                         spec_with(resize_spec, image_size=32))
    assert json.loads(out.exif) == {"Image Make": "Nikon"}
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect width="20" height="10"/></svg>'
    fetched = FetchedImage(pair=pair, data=svg, final_url="i", mime="image/svg+xml")
    off = resize_fetched(fetched, spec_with(resize_spec, image_size=32))
    assert isinstance(off, Rejection) and off.reason == DropReason.IMAGE_UNDECODABLE.value
    on = resize_fetched(fetched, spec_with(resize_spec, image_size=32, svg=True))
    assert (on.width, on.height, on.original_width, on.original_height, on.exif) == (32, 32, 20, 10, "")
