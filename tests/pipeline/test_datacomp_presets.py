"""configs/datacomp_*.yaml: DataComp's basic filter rule by rule on its boundary values, and the
CLIP-score top-30 % preset (ViT-L-14 / openai, keep_fraction 0.3, no other rule)."""

import pytest

from filters.caption_rules import caption_rules
from filters.image_rules import image_verdict
from pipeline.config import load_config
from pipeline.records import AltPair, DropReason


@pytest.fixture(scope="module")
def basic():
    return load_config(["datacomp_basic.yaml"])


def _caption_reason(cfg, caption: str):
    pair = AltPair(key="k", page_url="", image_url="http://h/i.jpg", caption=caption)
    for rule in caption_rules(cfg.caption):
        verdict = rule.check(pair)
        if verdict:
            return verdict[0]
    return None


@pytest.mark.parametrize("caption, expected", [
    # words > 2 (DataComp: len(fasttext.tokenize(text)) > 2)
    ("a red fox in the snow", None),
    ("red fox snow", None),                          # 3 words, 12 characters
    ("red fox", DropReason.CAPTION_TOO_SHORT),       # 2 words
    # characters > 5 (DataComp: len(text) > 5)
    ("a b cd", None),                                # 3 words, 6 characters: kept
    ("a b c", DropReason.CAPTION_TOO_SHORT),         # 3 words, 5 characters
    # English (DataComp: fasttext top-1 == "en"); here top-1 of py3langid, every caption judged
    ("Die Katze schläft auf dem Sofa im Wohnzimmer", DropReason.CAPTION_LANGUAGE),
    ("Le chat dort sur le canapé du salon", DropReason.CAPTION_LANGUAGE),
    ("two dogs on a sunny beach", None),
    # no upper bound, and none of our own caption rules that DataComp does not have
    (" ".join(["word"] * 100), None),                # over base.yaml's max_words 64
    ("a photo of a dog", None),
    ("click here now please", None),
])
def test_basic_caption_rules(basic, caption, expected):
    assert _caption_reason(basic, caption) == expected


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
    verdict = image_verdict(*size, basic.image)
    assert (verdict[0] if verdict else None) == expected


def test_basic_has_no_other_stage_that_drops(basic):
    assert not basic.score.enabled
    assert not any([basic.dedupe.url, basic.dedupe.url_caption, basic.dedupe.image_exact, basic.dedupe.near])
    assert basic.caption.boilerplate_max_images == 0 and basic.caption.language_min_confidence == 0.0
    assert not basic.blocklist.domains and not basic.license.allow and not basic.balance.enabled
    # downloaded as DataComp's download_upstream.py does (img2dataset)
    assert (basic.resize.image_size, basic.resize.mode, basic.resize.resize_only_if_bigger) == (
        512, "keep_ratio_largest", True)


def test_clip_top30_preset():
    cfg = load_config(["datacomp_clip_top30.yaml"])
    assert (cfg.score.enabled, cfg.score.model, cfg.score.pretrained, cfg.score.keep_fraction) == (
        True, "ViT-L-14", "openai", 0.3)
    assert _caption_reason(cfg, "ab") is None and _caption_reason(cfg, " ".join(["w"] * 200)) is None
    assert image_verdict(1, 5000, cfg.image) is None
    assert not any([cfg.dedupe.url, cfg.dedupe.url_caption, cfg.dedupe.image_exact, cfg.dedupe.near])
    # offline: the weights are a local file
    local = load_config(["datacomp_clip_top30.yaml"], ["score.pretrained=/models/ViT-L-14.pt"])
    assert local.score.pretrained == "/models/ViT-L-14.pt" and local.score.model == "ViT-L-14"


def test_basic_and_clip_top30_compose_as_documented():
    cfg = load_config(["datacomp_clip_top30.yaml", "datacomp_basic.yaml"], ["score.enabled=true"])
    assert cfg.score.enabled and cfg.score.keep_fraction == 0.3 and cfg.score.model == "ViT-L-14"
    assert cfg.caption == load_config(["datacomp_basic.yaml"]).caption and cfg.image.min_side == 200
