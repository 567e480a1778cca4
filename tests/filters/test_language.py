"""filters.language: captions confidently in a language not configured (py3langid, model in its wheel)."""

import pytest

from filters.caption_rules import caption_rules
from filters.language import LanguageRule, identify, language_verdict
from pipeline.config import CaptionConfig, CurateConfig
from pipeline.specs import caption_spec
from pipeline.records import AltPair, DropReason

KEEP = ("en",)


@pytest.mark.parametrize("caption,expected", [
    ("A red circle on a blue background", None),
    ("Screenshot of the layers dialog with two layers", None),
    ("Die Katze schläft auf dem Sofa im Wohnzimmer", DropReason.CAPTION_LANGUAGE),
    ("Le chat dort sur le canapé du salon", DropReason.CAPTION_LANGUAGE),
    ("una ragazza che legge un libro in giardino", DropReason.CAPTION_LANGUAGE),
    ("собака бежит по зелёной траве", DropReason.CAPTION_LANGUAGE),
    ("Stalker und Freund", None),                 # 3 words: never judged, whatever the guess
    ("The Toolbox window", None),
])
def test_language_verdict(caption, expected):
    verdict = language_verdict(caption, KEEP, 4, 0.5)
    assert (verdict[0] if verdict else None) == expected


def test_detail_names_the_language_and_confidence():
    reason, detail = language_verdict("Die Katze schläft auf dem Sofa im Wohnzimmer", KEEP, 4, 0.5)
    assert detail == "de p=1.00 (keeping en)"


def test_configured_languages_are_kept_and_confidence_gates():
    german = "Die Katze schläft auf dem Sofa im Wohnzimmer"
    assert language_verdict(german, ("en", "de"), 4, 0.5) is None
    assert language_verdict(german, (), 4, 0.5) is None              # off
    assert language_verdict(german, KEEP, 4, 1.0) is None            # never that sure
    assert identify(german)[0] == "de"


def test_rule_joins_caption_rules_only_when_languages_are_set():
    assert len(caption_rules(caption_spec(CurateConfig()))) == 1
    rules = caption_rules(caption_spec(CurateConfig(caption=CaptionConfig(languages=("en",)))))
    assert isinstance(rules[-1], LanguageRule)
    pair = AltPair(key="k", page_url="p", image_url="i", caption="Le chat dort sur le canapé du salon")
    assert rules[-1].check(pair)[0] == DropReason.CAPTION_LANGUAGE


def test_config_validates_language_knobs():
    from pipeline.config import ConfigError, load_config

    cfg = load_config(overrides=["caption.languages=[en, de]", "caption.language_min_confidence=0.7"])
    assert cfg.caption.languages == ("en", "de") and cfg.caption.language_min_confidence == 0.7
    assert load_config().caption.languages == ()  # off by default
    for bad in ("caption.languages=[EN]", "caption.languages=[english]", "caption.language_min_confidence=2",
                "caption.language_min_words=0", "caption.boilerplate_max_images=-1", "extract.tracker_max_side=-1"):
        with pytest.raises(ConfigError):
            load_config(overrides=[bad])
