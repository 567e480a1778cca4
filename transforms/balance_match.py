"""Metadata entries and caption matching for BalanceByMetadata (MetaCLIP), as pure functions.

Input: a metadata file (one entry per line, or a JSON list of strings as MetaCLIP's
``metadata.json``; ``.gz`` is decompressed by extension; local or any Beam ``FileSystems``
path) and captions. Output: the normalised, sorted, distinct entries, an Aho-Corasick
automaton over them (pyahocorasick), and per caption the sorted ids of the entries it
contains as a whole word or phrase, case-folded. Bad input raises ``MetadataError`` (a
``ValueError``) before the pipeline runs; a caption never raises.

Matching semantics. MetaCLIP pads the caption and every entry with spaces (after
spacing out ``, . ; : ? ! `` and tabs/newlines) and counts ``" entry "`` as a substring of
``" caption "``: a whole word or phrase. We do the same with a wider notion of word:
caption and entry both go through ``normalise`` (NFKC for non-ASCII text, ``casefold``,
every run of characters that is not a letter, digit or combining mark becomes one space),
so "Hot-Dog!" matches the entry "hot dog" and "dog's" matches "dog", but "dogs" and
"hotdog" do not match "dog". All occurrences count, overlapping ones too ("new york city"
hits "new york", "york city" and "new york city"); an entry counts once per caption.
Scripts written without spaces (Chinese, Japanese, Thai) only match entries that are whole
space-separated runs: this is a word matcher, not a segmenter.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import sys
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import ahocorasick
from apache_beam.io.filesystems import FileSystems

BUNDLED_METADATA = Path(__file__).resolve().parent.parent / "configs" / "metadata" / "wordnet_en.txt.gz"
BUNDLED_NAME = "bundled:wordnet_en"
# ASCII: lower-case letters and digits stay, every other byte becomes a space (bytes.translate, ~0.3 us).
_ASCII_TABLE = bytes((b + 32 if 65 <= b <= 90 else b) if chr(b).isascii() and chr(b).isalnum() else 32
                     for b in range(256))


class MetadataError(ValueError):
    """The metadata file is missing, unreadable, or holds no usable entry."""


@functools.cache
def _separators() -> re.Pattern:
    """Runs of characters that are not letters, digits or combining marks (built once per process).

    ``\\w`` alone splits Devanagari or Arabic words at their vowel signs (category M), so the marks
    are added. They live in planes 0, 1 and 14 only; scanning those takes ~0.2 s.
    """
    spans, start = [], None
    for cp in (*range(0x20000), *range(0xE0000, 0xE1000), sys.maxunicode + 1):
        mark = cp <= sys.maxunicode and unicodedata.category(chr(cp)).startswith("M")
        if mark and start is None:
            start = cp
        elif not mark and start is not None:
            spans.append(f"{re.escape(chr(start))}-{re.escape(chr(cp - 1))}")
            start = None
    return re.compile(f"(?:[^\\w{''.join(spans)}]|_)+")


def normalise(text: str) -> str:
    """Case-folded words of ``text`` joined by single spaces ("" when it has none)."""
    if text.isascii():
        return " ".join(text.encode("ascii").translate(_ASCII_TABLE).decode("ascii").split())
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _separators().sub(" ", folded).strip()


def parse_entries(data: bytes, source: str = "metadata") -> tuple[str, ...]:
    """Normalised, sorted, distinct entries from a text file (one per line) or a JSON list."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MetadataError(f"{source}: not UTF-8 text ({exc})") from None
    if text.lstrip()[:1] in ("[", "{"):  # JSON (a text file whose first entry starts so is not likely)
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise MetadataError(f"{source}: not a JSON list of strings ({exc})") from None
        if not isinstance(raw, list) or not all(isinstance(e, str) for e in raw):
            raise MetadataError(f"{source}: a JSON metadata file must be a list of strings")
    else:
        raw = text.splitlines()
    entries = tuple(sorted({e for e in map(normalise, raw) if e}))
    if not entries:
        raise MetadataError(f"{source}: no metadata entries (every line is empty or punctuation)")
    return entries


def read_entries(path: str) -> tuple[str, ...]:
    """Entries of ``path`` ("" = the bundled WordNet list), through Beam's FileSystems."""
    path = path or str(BUNDLED_METADATA)
    try:
        with FileSystems.open(path) as fh:  # .gz decompressed by extension
            data = fh.read()
    except (OSError, IOError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise MetadataError(f"balance.metadata {path}: cannot read ({exc})") from None
    return parse_entries(data, path)


def pack_entries(entries: Sequence[str]) -> bytes:
    """Entries as one compressed blob (0.6 MB for the bundled 146,580): what the workers get."""
    return zlib.compress("\n".join(entries).encode("utf-8"), 9)


def unpack_entries(blob: bytes) -> tuple[str, ...]:
    return tuple(zlib.decompress(blob).decode("utf-8").split("\n"))


@dataclass(frozen=True)
class Matcher:
    """An Aho-Corasick automaton over ``" entry "`` keys; the value of each key is its id."""

    entries: tuple
    automaton: object

    def match(self, caption: str) -> tuple[int, ...]:
        """Sorted ids of the entries ``caption`` contains as whole words or phrases."""
        text = normalise(caption)
        if not text:
            return ()
        return tuple(sorted({entry_id for _end, entry_id in self.automaton.iter(f" {text} ")}))


def build_matcher(entries: Sequence[str]) -> Matcher:
    """The automaton over normalised ``entries`` (ids are positions in ``entries``)."""
    automaton = ahocorasick.Automaton(ahocorasick.STORE_INTS)
    for entry_id, entry in enumerate(entries):
        automaton.add_word(f" {entry} ", entry_id)
    automaton.make_automaton()
    return Matcher(tuple(entries), automaton)


def naive_match(entries: Sequence[str], caption: str) -> tuple[int, ...]:
    """MetaCLIP's first reference loop (``" entry " in " caption "`` per entry): the test oracle."""
    text = f" {normalise(caption)} "
    return tuple(i for i, entry in enumerate(entries) if f" {entry} " in text)
