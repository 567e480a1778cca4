"""CaptionRules: drop alt texts that do not describe their image.

Input: ``AltPair``. Output: via ``ApplyRules``, kept pairs and rejections with
``caption.empty``, ``caption.url_like``, ``caption.filename`` (``IMG_0042.JPG``,
``DSC01234``, paths, hashes), ``caption.placeholder`` ("logo", "click here"),
``caption.navigation`` ("next", "«"), ``caption.too_short`` (DataComp's basic
filter: more than 2 words and more than 5 characters are needed) and
``caption.too_long``, then (when ``caption.languages`` is set) ``caption.language``
(filters/language.py). Checked in that order: the most specific reason wins, and
the costly language check sees only captions every other rule passed.

``caption.boilerplate`` (the same alt on many images of a site) needs a count
over the whole input, so it is its own stage: filters/boilerplate.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from filters.base import Verdict
from filters.language import LanguageRule
from pipeline.config import CaptionConfig
from pipeline.records import AltPair, DropReason

_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif)"
_FILENAME_RES = (
    re.compile(rf"^[\w\-. ()\[\]]+\.{_IMAGE_EXT}$", re.I),           # photo_1.jpg
    re.compile(r"^(?:img|dsc|dscn|dscf|pxl|p|mvimg|gopr|sam|screenshot)[_\- ]?\d{2,}\w*$", re.I),
    re.compile(r"^[0-9a-f]{16,}$", re.I),                                 # hashes
    re.compile(r"^(?:[\w\-.]+/)+[\w\-.]+$"),                              # paths
    re.compile(r"^[\w\-]*\d{4,}[\w\-]*$"),                               # 20190312_141516
)
_URL_RE = re.compile(r"^(?:https?://|www\.)\S+$|^\S+\.(?:com|org|net|io|html?)(?:/\S*)?$", re.I)
_PUNCT = " \t.,;:!?\"'()[]{}-_|*"


def normalise_caption(caption: str) -> str:
    """Lower case, whitespace collapsed, surrounding punctuation stripped."""
    return " ".join(caption.split()).strip(_PUNCT).lower()


_norm = normalise_caption


@dataclass(frozen=True)
class CaptionRule:
    """One check of ``caption_verdict`` exposed as a Rule (for ApplyRules)."""

    cfg: CaptionConfig
    name: str = "caption"

    def check(self, pair: AltPair) -> Verdict:
        return caption_verdict(pair.caption, self.cfg)


def caption_verdict(caption: str, cfg: CaptionConfig) -> Verdict:
    """``None`` to keep, else ``(reason, detail)``."""
    text = " ".join(caption.split())
    norm = _norm(text)
    if not norm:
        return DropReason.CAPTION_EMPTY, "" if not text else f"only punctuation: {text[:40]!r}"
    if _URL_RE.match(text):
        return DropReason.CAPTION_URL, text[:80]
    if any(rx.match(text) for rx in _FILENAME_RES):
        return DropReason.CAPTION_FILENAME, text[:80]
    if norm in {p.lower() for p in cfg.placeholders}:
        return DropReason.CAPTION_PLACEHOLDER, norm
    nav = {n.lower() for n in cfg.navigation}
    if norm in nav or text.strip().lower() in nav:
        return DropReason.CAPTION_NAVIGATION, text[:40]
    words = len(text.split())
    if words < cfg.min_words or len(text) < cfg.min_chars:
        return DropReason.CAPTION_TOO_SHORT, f"{words} words, {len(text)} chars"
    if words > cfg.max_words or len(text) > cfg.max_chars:
        return DropReason.CAPTION_TOO_LONG, f"{words} words, {len(text)} chars"
    return None


def caption_rules(cfg: CaptionConfig) -> list:
    rules = [CaptionRule(cfg)]
    if cfg.languages:
        rules.append(LanguageRule(tuple(cfg.languages), cfg.language_min_words, cfg.language_min_confidence))
    return rules
