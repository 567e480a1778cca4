"""configs/datacomp_*.yaml: DataComp's basic filter rule by rule on its boundary values, and the
CLIP-score top-30 % preset (ViT-L-14 / openai, keep_fraction 0.3, no other rule). The rules are
the ones pipeline/build.py applies, built by pipeline/specs.py from the loaded preset."""

import dataclasses

import pytest
import yaml

from filters.caption_rules import caption_rules, caption_verdict
from filters.image_rules import image_verdict
from filters.short_caption import short_caption_rules
from pipeline.config import CaptionConfig, config_path, load_config
from pipeline.records import AltPair, DropReason, ResizedImage
from pipeline.specs import caption_spec, image_spec


@pytest.fixture(scope="module")
def basic():
    return load_config(["datacomp_basic.yaml"])


def _before_fetch(cfg, caption: str):
    """The reason CaptionRules (with the language rule) give, or None."""
    pair = AltPair(key="k", page_url="", image_url="http://h/i.jpg", caption=caption)
    for rule in caption_rules(caption_spec(cfg)):
        verdict = rule.check(pair)
        if verdict:
            return verdict[0]
    return None


def _after_fetch(cfg, caption: str, original=(4000, 3000), thumb_bytes: int = 200_000):
    """The reason of the caption rules that run after the fetch (beside the image rules), on a
    512x384 thumbnail of ``thumb_bytes`` (200 KB: ~8 bits a pixel, photo-like), or None."""
    pair = AltPair(key="k", page_url="", image_url="http://h/p/4711.jpg", caption=caption)
    image = ResizedImage(pair=pair, data=b"\0" * thumb_bytes, ext="jpg", width=512, height=384,
                         original_width=original[0], original_height=original[1], sha256="")
    for rule in short_caption_rules(caption_spec(cfg)):
        verdict = rule.check(image)
        if verdict:
            return verdict[0]
    return None


@pytest.mark.parametrize("caption, words_ok", [
    ("red fox snow", True),           # 3 words: > 2
    ("a red fox in the snow", True),
    ("red fox", False),               # 2 words, however large and photo-like the image
    ("firetruck", False),
])
def test_basic_more_than_two_words(basic, caption, words_ok):
    assert _after_fetch(basic, caption) == (None if words_ok else DropReason.CAPTION_TOO_SHORT)
    huge = _after_fetch(basic, caption, original=(40_000, 30_000), thumb_bytes=2_000_000)
    assert huge == _after_fetch(basic, caption)  # whatever the image


@pytest.mark.parametrize("caption, expected", [
    ("a b cd", None),                                # 6 characters: > 5
    ("a b c", DropReason.CAPTION_TOO_SHORT),         # 5 characters
    ("ab cd", DropReason.CAPTION_TOO_SHORT),
    (" ".join(["word"] * 300), None),                # no upper bound (base.yaml caps at 256 words)
    ("x" * 5000 + " y z", None),
    ("a photo of a dog", None),                      # none of our content rules DataComp lacks
    ("photo 3 of 24", None),
    ("powered by a small wind turbine", None),
    ("click here now please", None),
    ("buy shoes buy shoes buy shoes buy shoes", None),
    ("the add power icon", None),
    ("[see the map]", DropReason.CAPTION_PLACEHOLDER),  # a documented difference (not configurable)
])
def test_basic_characters_and_no_other_caption_rule(basic, caption, expected):
    verdict = caption_verdict(caption, caption_spec(basic))
    assert (verdict[0] if verdict else None) == expected


@pytest.mark.parametrize("caption, expected", [
    ("two dogs on a sunny beach", None),
    ("an old red bus in London", None),
    ("Die Katze schläft auf dem Sofa im Wohnzimmer", DropReason.CAPTION_LANGUAGE),
    ("Le chat dort sur le canapé du salon", DropReason.CAPTION_LANGUAGE),
    ("der rote Bus", DropReason.CAPTION_LANGUAGE),   # 3 words: judged (DataComp judges every caption)
])
def test_basic_english_by_top_one_language(basic, caption, expected):
    assert _before_fetch(basic, caption) == expected
    assert basic.caption.language_min_confidence == 0.0  # top-1 decides, no confidence floor


@pytest.mark.parametrize("size, expected", [
    ((200, 200), None),                                # shorter side >= 200
    ((199, 300), DropReason.IMAGE_TOO_SMALL),
    ((300, 199), DropReason.IMAGE_TOO_SMALL),
    ((600, 200), None),                                # aspect exactly 3: kept (<= 3)
    ((200, 600), None),
    ((601, 200), DropReason.IMAGE_BAD_ASPECT),         # 3.005
    ((200, 601), DropReason.IMAGE_BAD_ASPECT),
    ((4000, 3000), None),
])
def test_basic_image_rules(basic, size, expected):
    verdict = image_verdict(*size, image_spec(basic))
    assert (verdict[0] if verdict else None) == expected


def test_basic_has_no_other_stage_that_drops(basic):
    assert not basic.score.enabled
    assert not any([basic.dedupe.url, basic.dedupe.url_caption, basic.dedupe.image_exact, basic.dedupe.near])
    assert basic.caption.boilerplate_max_images == 0
    assert not basic.blocklist.domains and not basic.license.allow and not basic.balance.enabled
    # downloaded as DataComp's download_upstream.py does (img2dataset)
    assert (basic.resize.image_size, basic.resize.mode, basic.resize.resize_only_if_bigger) == (
        512, "keep_ratio_largest", True)


def test_clip_top30_preset():
    cfg = load_config(["datacomp_clip_top30.yaml"])
    assert (cfg.score.enabled, cfg.score.model, cfg.score.pretrained, cfg.score.keep_fraction) == (
        True, "ViT-L-14", "openai", 0.3)
    for caption in ("ab", "x", " ".join(["w"] * 300), "photo 3 of 24", "spam spam spam spam spam"):
        assert _before_fetch(cfg, caption) is None
        assert _after_fetch(cfg, caption, original=(1, 1), thumb_bytes=1) is None
    assert image_verdict(1, 5000, image_spec(cfg)) is None
    assert not any([cfg.dedupe.url, cfg.dedupe.url_caption, cfg.dedupe.image_exact, cfg.dedupe.near])
    # offline: the weights are a local file
    local = load_config(["datacomp_clip_top30.yaml"], ["score.pretrained=/models/ViT-L-14.pt"])
    assert local.score.pretrained == "/models/ViT-L-14.pt" and local.score.model == "ViT-L-14"


def test_basic_and_clip_top30_compose_as_documented():
    cfg = load_config(["datacomp_clip_top30.yaml", "datacomp_basic.yaml"], ["score.enabled=true"])
    assert cfg.score.enabled and cfg.score.keep_fraction == 0.3 and cfg.score.model == "ViT-L-14"
    assert cfg.caption == load_config(["datacomp_basic.yaml"]).caption and cfg.image.min_side == 200


@pytest.mark.parametrize("preset", ["datacomp_basic.yaml", "datacomp_clip_top30.yaml"])
def test_presets_set_every_caption_knob(preset):
    """A caption rule added later must not apply to a DataComp preset unnoticed: each preset sets
    every caption knob itself, so a new knob fails here until the preset says what it wants."""
    with open(config_path(preset), encoding="utf-8") as fh:
        written = set(yaml.safe_load(fh)["caption"])
    assert {f.name for f in dataclasses.fields(CaptionConfig)} - written == set()
