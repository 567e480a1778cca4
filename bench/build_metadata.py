"""Rebuild configs/metadata/wordnet_en.txt.gz, BalanceByMetadata's bundled entries, from WordNet 3.0.

Input: a WordNet 3.0 ``dict`` directory (``index.noun``, ``index.verb``, ``index.adj``,
``index.adv``), e.g. from Debian's ``wordnet-base`` package::

    cd /tmp && apt-get download wordnet-base && dpkg -x wordnet-base_*.deb wn
    .venv/bin/python bench/build_metadata.py --wordnet /tmp/wn/usr/share/wordnet

Output: the gzip file (one normalised entry per line, sorted; gzip mtime 0, so the same
WordNet gives the same bytes) and its size and entry count on stdout.

Entries: every lemma of every part of speech (MetaCLIP's metadata starts from all WordNet
synsets), underscores as spaces, normalised as captions are (transforms/balance_match.py).
Left out: one-character lemmas ("a", "i": vitamin A, iodine — in alt text they are the
article and the pronoun) and lemmas without a letter ("1000", ".22"): they count words that
say nothing about the image. Why WordNet and not wordfreq: WordNet 3.0's licence lets us copy
and redistribute the database with its notice (configs/metadata/LICENSE-WordNet), it is a list
of concepts (nouns such as "golden retriever", not just frequent tokens), and it is what
MetaCLIP's own metadata begins with; wordfreq's word lists are CC BY-SA 4.0 (share-alike
terms on anything built from them) and rank tokens, including stop words, by frequency.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from transforms.balance_match import BUNDLED_METADATA, normalise, parse_entries  # noqa: E402

PARTS = ("noun", "verb", "adj", "adv")


def wordnet_lemmas(directory: str) -> list[str]:
    """Lemmas of the index files: the first field of each line not starting with a space (licence)."""
    lemmas = []
    for part in PARTS:
        with open(os.path.join(directory, f"index.{part}"), encoding="utf-8") as fh:
            for line in fh:
                if line and not line.startswith(" "):
                    lemmas.append(line.split(" ", 1)[0].replace("_", " "))
    return lemmas


def entries_from(lemmas: list[str]) -> list[str]:
    kept = {e for e in map(normalise, lemmas) if len(e) > 1 and any(c.isalpha() for c in e)}
    return sorted(kept)


def write_entries(entries: list[str], path: str) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(("\n".join(entries) + "\n").encode("utf-8"))
    data = buf.getvalue()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as fh:
        fh.write(data)
    os.replace(path + ".tmp", path)
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--wordnet", default="/usr/share/wordnet", help="WordNet 3.0 dict directory")
    ap.add_argument("--out", default=str(BUNDLED_METADATA))
    args = ap.parse_args(argv)
    lemmas = wordnet_lemmas(args.wordnet)
    entries = entries_from(lemmas)
    data = write_entries(entries, args.out)
    if list(parse_entries(gzip.decompress(data), args.out)) != entries:  # normalised already: a no-op reload
        print("reloading the written file changed the entries", file=sys.stderr)
        return 1
    print(f"{args.out}: {len(entries)} entries from {len(lemmas)} WordNet lemmas, {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
