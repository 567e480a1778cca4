"""BalanceByMetadata matching speed against the bundled metadata, beside MetaCLIP's reference loop.

Captions (``--n``, default 200k, seeded): a mix shaped like web alt text —
  45%  WordNet 3.0 glosses and usage examples cut to 3-25 words (real English sentences; Debian
       ``wordnet-base``, fetched with ``apt-get download`` into bench/_work/ like bench/extract.py;
       generated text takes their place if apt cannot get it, and the run says so)
  30%  generated product / photo / stock alt text (brands, sizes, SKUs, "IMG_2041.JPG", mixed case)
  15%  the sample web's scene captions (pipeline/sample/scenes.py)
  10%  non-ASCII: accented Latin, German, Cyrillic, Greek, CJK, Devanagari (the NFKC / regex path)

Measured, in one process (one core), CPU time (``time.process_time``: the machine may be shared):
  ours      transforms.balance._MatchFn.process on AltPairs — the code path a pipeline runs
            (normalise, Aho-Corasick over 146,580 WordNet entries, language-blind) — and the bare
            ``Matcher.match`` under it
  MetaCLIP  the reference loop of MetaCLIP's substr_matching (``" entry " in " caption "`` for every
            entry), on ``--baseline`` captions, whose matches must equal ours exactly
  keep      ``keep`` (blake2b of the key + the probability) per matched pair
Prints captions/min per core and the ratio; exits 1 below ``--target`` (1M captions/min per core)
or on any difference from the reference loop.

    .venv/bin/python bench/balance.py [--n 200000] [--baseline 150] [--target 1000000]
"""

from __future__ import annotations

import argparse
import glob
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK  # noqa: E402
from pipeline.records import AltPair, make_key  # noqa: E402
from pipeline.sample.scenes import caption_for, random_specs  # noqa: E402
from transforms.balance import _MatchFn, build_spec, draw, keep_probability, matcher_for  # noqa: E402
from transforms.balance_match import naive_match  # noqa: E402

WORDNET_DIR = os.path.join(WORK, "wordnet")
_BRANDS = ["Nike", "Adidas", "IKEA", "Samsung", "Canon", "Levi's", "LEGO", "Dyson", "Apple", "Bosch"]
_THINGS = ["Running Shoes", "Sofa Bed", "Galaxy S24 Ultra", "EOS R6 Mark II", "501 Jeans", "Millennium Falcon",
           "V15 Vacuum", "MacBook Air 13\"", "Cordless Drill", "Oak Dining Table", "Leather Handbag",
           "Wall Clock", "Garden Hose 25m", "Ceramic Mug Set", "Kids' Raincoat"]
_PHOTO = ["Photo of", "Stock image:", "Close-up of", "Aerial view of", "Portrait of", "Illustration —",
          "Wedding photography:", "Vintage postcard,", "Screenshot of", "Watercolor painting of"]
_SCENES = ["a golden retriever puppy playing in the snow", "the Eiffel Tower at night", "sunset over the Pacific",
           "fresh strawberries on a wooden table", "a busy street market in Marrakech", "mountain bikers on a trail",
           "an old lighthouse on a rocky coast", "children reading in a library", "a bowl of ramen with eggs",
           "the New York City skyline from Brooklyn"]
_FOREIGN = ["Ein kleiner Hund spielt im Garten — Sommer 2021", "Café au lait et croissant sur la table",
            "Niños jugando fútbol en la playa, atardecer", "Кошка спит на подоконнике", "Η Ακρόπολη της Αθήνας",
            "東京の夜景とスカイツリー", "北京故宫的雪景", "भारत का ताजमहल सूर्योदय के समय", "Straßenbahn in Zürich, Bahnhofstraße",
            "Ölgemälde: Landschaft mit Fluss", "Ελιές και φέτα σε πιάτο", "İstanbul'da Boğaz manzarası"]


def fetch_wordnet() -> str:
    """WordNet's dict directory under bench/_work/ (apt-get download + dpkg -x), or "" when apt fails."""
    found = glob.glob(os.path.join(WORDNET_DIR, "usr", "share", "wordnet", "data.noun"))
    if found:
        return os.path.dirname(found[0])
    os.makedirs(WORDNET_DIR, exist_ok=True)
    try:
        if subprocess.run(["apt-get", "download", "wordnet-base"], cwd=WORDNET_DIR, capture_output=True).returncode:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, check=True)
            subprocess.run(["apt-get", "download", "wordnet-base"], cwd=WORDNET_DIR, capture_output=True, check=True)
        for deb in glob.glob(os.path.join(WORDNET_DIR, "*.deb")):
            subprocess.run(["dpkg", "-x", deb, WORDNET_DIR], check=True)
    except (OSError, subprocess.CalledProcessError):
        return ""
    found = glob.glob(os.path.join(WORDNET_DIR, "usr", "share", "wordnet", "data.noun"))
    return os.path.dirname(found[0]) if found else ""


def glosses(directory: str) -> list[str]:
    """Definitions and quoted examples of every WordNet synset (the text after ``|``)."""
    out = []
    for part in ("noun", "verb", "adj", "adv"):
        with open(os.path.join(directory, f"data.{part}"), encoding="utf-8") as fh:
            for line in fh:
                if not line.startswith(" ") and "|" in line:
                    out.extend(g.strip().strip('"') for g in line.split("|", 1)[1].split(";") if g.strip())
    return out


def _generated(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.4:
        return (f"{rng.choice(_BRANDS)} {rng.choice(_THINGS)} - {rng.choice(['Black', 'White', 'Navy', 'Red'])}"
                f", Size {rng.randint(4, 14)} | SKU {rng.randint(10000, 99999)}")
    if kind < 0.8:
        text = f"{rng.choice(_PHOTO)} {rng.choice(_SCENES)}"
        return text.upper() if rng.random() < 0.05 else text
    return f"IMG_{rng.randint(1000, 9999)}.JPG {rng.choice(_SCENES)} #{rng.choice(['travel', 'food', 'art'])}"


def captions(n: int, seed: int = 0) -> tuple[list[str], bool]:
    rng = random.Random(seed)
    wn = fetch_wordnet()
    real = glosses(wn) if wn else []
    scenes = [caption_for(s, rng) for s in random_specs(seed, 2000)]
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45 and real:
            words = rng.choice(real).split()
            start = rng.randrange(max(1, len(words) - 3))
            out.append(" ".join(words[start:start + rng.randint(3, 25)]))
        elif r < 0.75 or (r < 0.45 and not real):
            out.append(_generated(rng))
        elif r < 0.90:
            out.append(rng.choice(scenes))
        else:
            out.append(f"{rng.choice(_FOREIGN)} {rng.randint(1, 99)}")
    return out, bool(real)


def _cpu(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--baseline", type=int, default=150, help="captions for MetaCLIP's reference loop")
    ap.add_argument("--target", type=float, default=1_000_000, help="captions per minute per core")
    args = ap.parse_args(argv)
    texts, real = captions(args.n)
    words = sum(len(t.split()) for t in texts) / len(texts)
    print(f"{len(texts)} captions, {words:.1f} words on average"
          + ("" if real else " (WordNet glosses unavailable: generated text only)"))
    build_start = time.perf_counter()
    spec = build_spec("", 20000, (), (), True)
    matcher = matcher_for(spec)
    print(f"bundled metadata: {spec.n_entries} entries; read + automaton {time.perf_counter() - build_start:.2f} s")
    pairs = [AltPair(key=make_key("http://bench.test/", i), page_url="http://bench.test/", image_url="", caption=t)
             for i, t in enumerate(texts)]
    fn = _MatchFn(spec)
    matched = []
    dofn_s = _cpu(lambda: matched.extend(out for p in pairs for out in fn.process(p, spec.entries_blob)))
    bare_s = _cpu(lambda: [matcher.match(t) for t in texts])
    hits = [m for m in matched if isinstance(m, tuple)]
    per_pair = sum(len(ids) for _, _, ids in hits) / max(1, len(hits))
    counts = {}
    for _, _, ids in hits:
        for e in ids:
            counts[e] = counts.get(e, 0) + 1
    keep_s = _cpu(lambda: [draw(r.key) < keep_probability([counts[e] for e in ids], 200) for r, _, ids in hits])
    sample = texts[:: max(1, len(texts) // args.baseline)][: args.baseline]
    ref = []
    ref_s = _cpu(lambda: ref.extend(naive_match(matcher.entries, t) for t in sample))
    mismatched = sum(matcher.match(t) != r for t, r in zip(sample, ref))
    ours, bare = len(texts) / dofn_s * 60, len(texts) / bare_s * 60
    theirs = len(sample) / ref_s * 60
    print(f"matched {len(hits)} of {len(texts)} captions ({len(hits) / len(texts):.1%}), "
          f"{per_pair:.1f} entries per matched caption, {len(counts)} entries hit")
    print(f"ours (MatchEntries DoFn):   {ours / 1e6:6.2f} M captions/min/core  ({dofn_s / len(texts) * 1e6:.1f} us each)")
    print(f"ours (Matcher.match only):  {bare / 1e6:6.2f} M captions/min/core")
    print(f"MetaCLIP reference loop:    {theirs:10.0f} captions/min/core  ({ref_s / len(sample) * 1e3:.1f} ms each, "
          f"{len(sample)} captions)")
    print(f"ratio ours / MetaCLIP loop: {ours / theirs:.0f}x; keep decision {len(hits) / keep_s * 60 / 1e6:.1f} M/min")
    print(f"same matches as the reference loop: {len(sample) - mismatched}/{len(sample)}")
    ok = ours >= args.target and not mismatched
    print(("PASS" if ok else "FAIL") + f": target {args.target / 1e6:.1f} M captions/min/core")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
