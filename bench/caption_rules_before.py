"""The caption rules as they were before issue 16 (filters/caption_rules.py and the boilerplate key
of filters/boilerplate.py at commit 0c2ef5b), kept verbatim as bench/caption_quality.py's baseline.

Input: a caption (or a pair). Output: ``None`` or ``(reason, detail)``, as then: DataComp's basic
filter (more than 2 words, more than 5 characters), a 64-word cap, exact placeholder/navigation
matches, and boilerplate keyed by the exact normalised caption. Not used by the pipeline.
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import urlsplit

from pipeline.records import AltPair, DropReason

MIN_WORDS, MIN_CHARS, MAX_WORDS, MAX_CHARS = 3, 6, 64, 1000
PLACEHOLDERS = {"image", "images", "photo", "photos", "picture", "pic", "img", "logo", "icon", "banner", "spacer",
                "thumbnail", "thumb", "click here", "placeholder", "untitled", "no alt", "alt", "graphic", "avatar",
                "button"}
NAVIGATION = {"next", "prev", "previous", "home", "up", "back", "forward", "top", "more", "menu", "«", "»", "‹",
              "›", "←", "→", "↑", "↓", "<", ">", "<<", ">>"}
_IMAGE_EXT = r"(?:jpe?g|png|gif|webp|bmp|tiff?|svg|heic|avif)"
_FILENAME_RES = (
    re.compile(rf"^[\w\-. ()\[\]]+\.{_IMAGE_EXT}$", re.I),
    re.compile(r"^(?:img|dsc|dscn|dscf|pxl|p|mvimg|gopr|sam|screenshot)[_\- ]?\d{2,}\w*$", re.I),
    re.compile(r"^[0-9a-f]{16,}$", re.I),
    re.compile(r"^(?:[\w\-.]+/)+[\w\-.]+$"),
    re.compile(r"^[\w\-]*\d{4,}[\w\-]*$"),
)
_URL_RE = re.compile(r"^(?:https?://|www\.)\S+$|^\S+\.(?:com|org|net|io|html?)(?:/\S*)?$", re.I)
_PUNCT = " \t.,;:!?\"'()[]{}-_|*"


def normalise(caption: str) -> str:
    return " ".join(caption.split()).strip(_PUNCT).lower()


def verdict(caption: str):
    text = " ".join(caption.split())
    norm = normalise(text)
    if not norm:
        return DropReason.CAPTION_EMPTY, ""
    if _URL_RE.match(text):
        return DropReason.CAPTION_URL, text[:80]
    if any(rx.match(text) for rx in _FILENAME_RES):
        return DropReason.CAPTION_FILENAME, text[:80]
    if norm in PLACEHOLDERS:
        return DropReason.CAPTION_PLACEHOLDER, norm
    if norm in NAVIGATION or text.strip().lower() in NAVIGATION:
        return DropReason.CAPTION_NAVIGATION, text[:40]
    words = len(text.split())
    if words < MIN_WORDS or len(text) < MIN_CHARS:
        return DropReason.CAPTION_TOO_SHORT, f"{words} words, {len(text)} chars"
    if words > MAX_WORDS or len(text) > MAX_CHARS:
        return DropReason.CAPTION_TOO_LONG, f"{words} words, {len(text)} chars"
    return None


def boilerplate_key(pair: AltPair) -> Optional[tuple[str, str]]:
    site = urlsplit(pair.page_url).netloc.lower() if pair.page_url else ""
    caption = normalise(pair.caption)
    return (site, caption) if site and caption else None
