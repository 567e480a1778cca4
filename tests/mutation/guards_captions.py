"""Guards of the caption rules that generalise (issue 16): each, switched off, lets a kind of junk
through or drops real captions, and a named test sees it."""

from filters.caption_rules import normalise_caption
from tests.mutation.registry import Guard

_C = "tests/filters/test_caption_rules.py::"
_K = "tests/filters/test_caption_corpus.py::"
_S = "tests/filters/test_short_caption.py::"
_B = "tests/filters/test_boilerplate.py::"

GUARDS = [
    Guard("caption_numbered_placeholder", "filters.caption_rules:numbered_placeholder", lambda norm, words: False,
          (_C + "test_spec_has_no_defaults_and_rules_take_it",)),
    Guard("caption_badge", "filters.caption_rules:badge", lambda norm, badges: False,
          (_K + "test_each_junk_kind_the_rules_target_is_dropped",)),
    Guard("caption_repetitive", "filters.caption_rules:repetitive", lambda text, min_words: False,
          (_K + "test_each_junk_kind_the_rules_target_is_dropped",)),
    Guard("boilerplate_digits_folded", "filters.boilerplate:boilerplate_form", normalise_caption,
          (_B + "test_numbered_captions_are_one_template",)),
    Guard("short_caption_judged_with_image", "filters.short_caption:short_caption_verdict",
          lambda caption, url, side, bpp, spec: None,
          (_S + "test_rule_on_resized_images_inline_and_spilled_agree", _K + "test_rules_meet_the_goal_and_beat_the_old_ones")),
    Guard("short_caption_spilled_size", "filters.short_caption:encoded_size", lambda image: len(image.data),
          (_S + "test_rule_on_resized_images_inline_and_spilled_agree",)),
]
