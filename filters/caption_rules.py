"""CaptionRules: drop alt texts that do not describe their image.

Input: ``AltPair``. Output: via ``ApplyRules``, kept pairs and rejections with, in this order
(the most specific reason wins, and the costly language check sees only captions every other
rule passed):

- ``caption.empty``: nothing but whitespace and punctuation;
- ``caption.url_like``; ``caption.filename`` (``IMG_0042.JPG``, ``DSC01234``, paths, hashes, and
  one-token identifiers such as ``srtm_plus``, ``grey.eq``, ``Thin-Client-Login``, ``width=400``);
- ``caption.placeholder``: a placeholder word ("logo", "click here"), a *numbered* placeholder
  (a placeholder word with a number or id: "photo No. 850", "Image 3 of 24", "Three images") and
  a bracketed UI label ("[Note]", "[Download Location]"), and a control's name ending in a
  ``ui_suffixes`` word ("Add Power icon", "print button");
- ``caption.badge``: a badge or button phrase ("Powered by MediaWiki", "Creative Commons License");
- ``caption.navigation`` ("next", "«");
- ``caption.repetitive``: one word or phrase said over and over ("spam spam spam spam",
  keyword stuffing, "Threshold : 30, Threshold : 32, ...");
- ``caption.too_short``: fewer than ``min_chars`` characters. A caption of fewer than
  ``min_words`` words but enough characters is *not* judged here: whether "A banana." or
  "Home" is a caption depends on the image, so filters/short_caption.py decides after the fetch;
- ``caption.too_long``: over ``max_words`` / ``max_chars``, a cap for garbage only (the CLIP
  tokenizer truncates long text itself; real descriptions run past 100 words);
- then (when ``languages`` is set) ``caption.language`` (filters/language.py).

``caption.boilerplate`` (the same alt on many images of a site) needs a count over the whole
input, so it is its own stage: filters/boilerplate.py, keyed by ``boilerplate_form``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from filters.base import Verdict
from filters.language import LanguageRule
from pipeline.records import AltPair, DropReason


@dataclass(frozen=True)
class CaptionSpec:
    """What the caption rules need from the ``caption`` config section (pipeline/specs.py makes it)."""

    min_words: int  # fewer words: judged with the image after the fetch (filters/short_caption.py)
    min_chars: int  # fewer characters: caption.too_short here, whatever the image
    max_words: int
    max_chars: int
    placeholders: tuple  # whole captions that name no content ("image", "logo"); with a number: numbered
    navigation: tuple
    badges: tuple  # phrases a badge/button caption starts with ("powered by", "creative commons")
    ui_suffixes: tuple  # a caption ending in one of these words names a control ("Zoom to fit page icon")
    repeat_min_words: int  # captions shorter than this are never judged repetitive
    languages: tuple
    language_min_words: int
    language_min_confidence: float
    short_min_side: int  # filters/short_caption.py: a short caption needs an image this large ...
    short_min_bpp: float  # ... and this photo-like (bits per picture pixel of its thumbnail)


_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif)"
_FILENAME_RES = (
    re.compile(rf"^[\w\-. ()\[\]]+\.{_IMAGE_EXT}$", re.I),           # photo_1.jpg
    re.compile(r"^(?:img|dsc|dscn|dscf|pxl|p|mvimg|gopr|sam|screenshot)[_\- ]?\d{2,}\w*$", re.I),
    re.compile(r"^[0-9a-f]{16,}$", re.I),                                 # hashes
    re.compile(r"^(?:[\w\-.]+/)+[\w\-.]+$"),                              # paths
    re.compile(r"^[\w\-]*\d{4,}[\w\-]*$"),                               # 20190312_141516
    # one token that is an identifier, not words: snake_case, dotted names, key=value markup,
    # three or more hyphen-joined parts (a file name with its extension cut: Thin-Client-Login)
    re.compile(r"^(?=\S*(?:\w_\w|\w\.\w|\w=))\S+$|^\w+(?:-\w+){2,}$"),
)
_URL_RE = re.compile(r"^(?:https?://|www\.)\S+$|^\S+\.(?:com|org|net|io|html?)(?:/\S*)?$", re.I)
_BRACKETED = re.compile(r"^\[[^\[\]]{1,40}\]$")  # DocBook admonitions "[Note]", wiki "[edit]", "[image]"
_PUNCT = " \t.,;:!?\"'()[]{}-_|*"
_NUMBER_WORDS = ("one two three four five six seven eight nine ten eleven twelve twenty hundred "
                 "first second third last").split()
# "No. 12", "#12", "12", "12 of 24", "12/24", "three": the number part of a numbered placeholder
_NUMBER = rf"(?:(?:no\.?|nr\.?|number|#)\s*)?(?:\d+|{'|'.join(_NUMBER_WORDS)})(?:\s*(?:of|/)\s*\d+)?"
_WORD = re.compile(r"[^\W_]+|#")
_NUMBER_RUN = re.compile(r"\d+(?:[.,]\d+)*")  # 18.62, 1,000: one number
_STOP = frozenset("the a an of and or in on at to for with by is are from this that".split())


def normalise_caption(caption: str) -> str:
    """Lower case, whitespace collapsed, surrounding punctuation stripped."""
    return " ".join(caption.split()).strip(_PUNCT).lower()


_norm = normalise_caption


def boilerplate_form(caption: str) -> str:
    """The form DropBoilerplate counts: normalised, every run of digits one ``#`` ("photo No. 1"
    and "photo No. 850" are one template)."""
    return re.sub(r"\d+", "#", normalise_caption(caption))


@dataclass(frozen=True)
class CaptionRule:
    """One check of ``caption_verdict`` exposed as a Rule (for ApplyRules)."""

    spec: CaptionSpec
    name: str = "caption"

    def check(self, pair: AltPair) -> Verdict:
        return caption_verdict(pair.caption, self.spec)


def numbered_placeholder(norm: str, placeholders) -> bool:
    """A placeholder word with a number or id before or after it: "photo no. 850", "image 3 of 24",
    "three images", "thumbnail #4". ``norm``: a normalised caption."""
    words = "|".join(re.escape(p) for p in sorted(placeholders, key=len, reverse=True) if " " not in p)
    if not words:
        return False
    noun = rf"(?:{words})s?"
    return bool(re.fullmatch(rf"{noun}\W*{_NUMBER}|{_NUMBER}\W*{noun}", norm))


def badge(norm: str, badges) -> bool:
    """The caption starts with a badge phrase ("powered by", "creative commons"), as whole words."""
    return any(norm.startswith(b) and (len(norm) == len(b) or not norm[len(b)].isalnum()) for b in badges)


def repetitive(text: str, min_words: int) -> bool:
    """One unit said over and over (digits folded, so "Threshold : 30, Threshold : 32" repeats):
    one word, pair or triple of words three or more times covering 60% of the caption, or fewer
    than half of its word pairs distinct (a phrase cycled: keyword stuffing). A figure's panel
    titles that share a word ("Scharr - Prewitt, Scharr - Sobel") stay under both."""
    words = _WORD.findall(_NUMBER_RUN.sub(" # ", text.lower()))
    if len(words) < min_words:
        return False
    bigrams = list(zip(words, words[1:]))
    if len(set(bigrams)) < 0.5 * len(bigrams):
        return True
    for n in (1, 2, 3):
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1)
                        if n > 1 or (words[i] not in _STOP and words[i] != "#"))
        top = grams.most_common(1)
        if top and top[0][1] >= 3 and top[0][1] * n >= 0.6 * len(words):
            return True
    return False


def _word_verdict(text: str, norm: str, spec: CaptionSpec) -> Verdict:
    """The checks on what the caption says: placeholders, badges, navigation, repetition."""
    placeholders = {p.lower() for p in spec.placeholders}
    if norm in placeholders:
        return DropReason.CAPTION_PLACEHOLDER, norm
    if numbered_placeholder(norm, placeholders):
        return DropReason.CAPTION_PLACEHOLDER, f"numbered: {norm[:60]}"
    if _BRACKETED.match(text):
        return DropReason.CAPTION_PLACEHOLDER, f"bracketed UI label: {text[:40]}"
    if norm.rsplit(" ", 1)[-1] in spec.ui_suffixes:
        return DropReason.CAPTION_PLACEHOLDER, f"control name: {text[:60]}"
    if badge(norm, [b.lower() for b in spec.badges]):
        return DropReason.CAPTION_BADGE, text[:80]
    nav = {n.lower() for n in spec.navigation}
    if norm in nav or text.strip().lower() in nav:
        return DropReason.CAPTION_NAVIGATION, text[:40]
    if repetitive(text, spec.repeat_min_words):
        return DropReason.CAPTION_REPETITIVE, text[:80]
    return None


def caption_verdict(caption: str, spec: CaptionSpec) -> Verdict:
    """``None`` to keep (a caption of fewer than ``min_words`` words is judged later, with its
    image: filters/short_caption.py), else ``(reason, detail)``."""
    text = " ".join(caption.split())
    norm = _norm(text)
    if not norm:
        return DropReason.CAPTION_EMPTY, "" if not text else f"only punctuation: {text[:40]!r}"
    if _URL_RE.match(text):
        return DropReason.CAPTION_URL, text[:80]
    if any(rx.match(text) for rx in _FILENAME_RES):
        return DropReason.CAPTION_FILENAME, text[:80]
    verdict = _word_verdict(text, norm, spec)
    if verdict is not None:
        return verdict
    words = len(text.split())
    if len(text) < spec.min_chars:
        return DropReason.CAPTION_TOO_SHORT, f"{words} words, {len(text)} chars"
    if words > spec.max_words or len(text) > spec.max_chars:
        return DropReason.CAPTION_TOO_LONG, f"{words} words, {len(text)} chars"
    return None


def caption_rules(spec: CaptionSpec) -> list:
    rules = [CaptionRule(spec)]
    if spec.languages:
        rules.append(LanguageRule(tuple(spec.languages), spec.language_min_words, spec.language_min_confidence))
    return rules
