"""srcset parsing and choosing the image candidate to download (no Beam import).

Input: ``srcset`` attribute values (``<img srcset>``, ``<img data-srcset>``,
``<picture><source srcset>``), an optional declared width and the target size
(``resize.image_size``). Output: ``Candidate`` records and the one to fetch.
Nothing is dropped here: a srcset that does not parse gives no candidates and
the caller falls back to ``src``.

Rule: the smallest candidate at least as wide as the target, else the widest.
``w`` descriptors give the width directly; ``x`` descriptors give it only with a
declared width (``density * width``), otherwise the densest candidate stands in
for "widest" (it is the largest file of that set). ``sizes`` is ignored: it
describes the layout slot, not the file, and we are not laying out a page.

The parser follows the WHATWG "parse a srcset attribute" algorithm (URLs may
contain commas, as CDN transforms such as ``w_300,h_200`` do). No maintained
Python package implements it (w3lib, parsel and bs4 do not parse srcset), so it
is written here, against the spec's steps. Descriptor numbers are ASCII digits of
bounded length ("３００w", "²x" or a 10,000-digit width make the candidate invalid,
as in browsers, never an exception); a density must be finite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Sequence

_WS = " \t\n\r\f"
# ASCII only (``\d`` and ``str.isdigit`` accept "３" and "²"); lengths bounded: int() of a
# 10,000-digit string raises, and no image is a billion pixels wide.
_INT = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?")
_NUMBER_MAX_CHARS = 32


@dataclass(frozen=True)
class Candidate:
    """One image candidate: its URL and either a width (``w``) or a density (``x``)."""

    url: str
    width: Optional[int] = None
    density: Optional[float] = None

    @property
    def descriptor(self) -> str:
        if self.width is not None:
            return f"{self.width}w"
        return f"{self.density:g}x" if self.density is not None else "1x"


def _descriptors(text: str, start: int) -> tuple[list[str], int]:
    """Descriptor tokens from ``start`` up to the candidate's comma (commas in parentheses kept)."""
    tokens, current, depth, i = [], "", 0, start
    while i < len(text):
        ch = text[i]
        if depth == 0 and ch == ",":
            i += 1
            break
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        if depth == 0 and ch in _WS:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += ch
        i += 1
    if current:
        tokens.append(current)
    return tokens, i


def _candidate(url: str, tokens: Sequence[str]) -> Optional[Candidate]:
    """A candidate from its descriptors; None when they are invalid (the spec drops it)."""
    width = density = None
    for token in tokens:
        value, kind = token[:-1], token[-1:].lower()
        if kind == "w" and width is None and density is None and (number := _pixels(value)):
            width = number
        elif kind == "x" and width is None and density is None and (ratio := _density(value)):
            density = ratio
        elif kind == "h" and _pixels(value) is not None:
            continue  # future-compat height descriptor: allowed, unused
        else:
            return None
    return Candidate(url, width, density)


def _pixels(value: str) -> Optional[int]:
    """A ``w``/``h`` descriptor's number (ASCII digits, at most 9); None when it is not one."""
    return int(value) if _INT.fullmatch(value) else None


def _density(value: str) -> Optional[float]:
    """An ``x`` descriptor's positive, finite number; None otherwise."""
    if len(value) > _NUMBER_MAX_CHARS or not _NUMBER.fullmatch(value):
        return None
    number = float(value)
    return number if 0 < number < float("inf") else None


def parse_srcset(value: Optional[str]) -> list[Candidate]:
    """Candidates of a srcset value, in order; invalid ones are left out."""
    text, out, i = value or "", [], 0
    while i < len(text):
        while i < len(text) and (text[i] in _WS or text[i] == ","):
            i += 1
        start = i
        while i < len(text) and text[i] not in _WS:
            i += 1
        url = text[start:i]
        if not url:
            break
        tokens: list[str] = []
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            tokens, i = _descriptors(text, i)
        if url:
            cand = _candidate(url, tokens)
            if cand is not None:
                out.append(cand)
    return out


def effective_width(cand: Candidate, declared_width: Optional[int]) -> Optional[float]:
    """The candidate's pixel width if it can be known."""
    if cand.width is not None:
        return float(cand.width)
    if declared_width:
        return (cand.density or 1.0) * declared_width
    return None


def choose_candidate(candidates: Sequence[Candidate], target: int,
                     declared_width: Optional[int] = None) -> Optional[Candidate]:
    """The smallest candidate >= ``target`` wide, else the widest; first wins ties."""
    if not candidates:
        return None
    sized = [(effective_width(c, declared_width), i, c) for i, c in enumerate(candidates)]
    known = [(w, i, c) for w, i, c in sized if w is not None]
    if not known:  # x descriptors without a declared width: the densest is the largest file
        return max(sized, key=lambda t: (t[2].density or 1.0, -t[1]))[2]
    big_enough = [t for t in known if t[0] >= target]
    if big_enough:
        return min(big_enough, key=lambda t: (t[0], t[1]))[2]
    return max(known, key=lambda t: (t[0], -t[1]))[2]


def with_src(candidates: list[Candidate], src: str) -> list[Candidate]:
    """Add ``src`` as the 1x candidate of a density srcset that lacks one (as browsers do)."""
    if not src or any(c.width is not None for c in candidates):
        return candidates
    if any((c.density or 1.0) == 1.0 for c in candidates):
        return candidates
    return [*candidates, Candidate(src, None, 1.0)]
