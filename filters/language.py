"""The caption language rule: drop captions confidently written in a language not configured.

Input: ``AltPair``. Output: a ``Verdict`` — ``caption.language`` with the
identified language and its probability in the detail, or None (kept).
Captions under ``caption.language_min_words`` words are never judged: on a few
words identifiers guess (py3langid names "GIMP" Serbian), and a wrong guess
would drop a good caption. A drop also needs ``language_min_confidence``.

The identifier is py3langid (langid.py's maintained fork): its model ships
inside the wheel (``py3langid/data/model.npz.xz``), so nothing is downloaded at
run time. Loading takes about a second, so it happens once per worker process on
first use (``functools.cache``); the rule itself holds only config values and
pickles small into the DoFn.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from filters.base import Verdict
from pipeline.records import AltPair, DropReason


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, normalised probability) of ``text``."""
    lang, prob = _identifier().classify(text)
    return str(lang), float(prob)


def language_verdict(caption: str, languages: tuple, min_words: int, min_confidence: float) -> Verdict:
    """``None`` to keep; ``caption.language`` when sure enough of another language."""
    if not languages or len(caption.split()) < min_words:
        return None
    lang, prob = identify(caption)
    if lang in languages or prob < min_confidence:
        return None
    return DropReason.CAPTION_LANGUAGE, f"{lang} p={prob:.2f} (keeping {','.join(languages)})"


@dataclass(frozen=True)
class LanguageRule:
    """``language_verdict`` as a Rule (for ApplyRules)."""

    languages: tuple
    min_words: int = 4
    min_confidence: float = 0.5
    name: str = "caption_language"

    def check(self, pair: AltPair) -> Verdict:
        return language_verdict(pair.caption, self.languages, self.min_words, self.min_confidence)
