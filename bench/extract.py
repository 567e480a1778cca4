"""Extraction speed beside a raw lxml parse, and a loopback crawl of a real documentation site.

Corpus: the GIMP user manual (Debian packages gimp-help-en + gimp-help-common), fetched by
this script with ``apt-get download`` into bench/_work/ and unpacked with ``dpkg -x``
(``apt-get update`` is run first when apt cannot find them).

1. Speed, in one run, on the same pages in memory (no I/O):
   raw     lxml.html.document_fromstring + iterate <img> reading src and alt
   ours    transforms.extract_alt_text.extract_pairs: charset detection, parse, base href,
           srcset/picture/lazy choice, noscript twins, trackers, heading/figcaption/lang context
   Prints pages/s and MB/s of each (best of ``--rounds`` interleaved passes) and the ratio (target: ours >= 0.4x).
2. Crawl check: the manual's HTML root served by a threaded http.server on 127.0.0.1 (port 0),
   crawled from en/index.html with the pipeline's FetchPages + ExtractAltText on Beam's
   FnApiRunner (private networks allowed, no image downloads), compared with an independent
   count: a breadth-first walk over the files on disk with the standard library's
   html.parser, counting reachable pages and <img> tags with a non-empty alt.

    .venv/bin/python bench/extract.py [--rounds 7] [--skip-crawl]
"""

from __future__ import annotations

import argparse
import functools
import glob
import html.parser
import json
import logging
import os
import posixpath
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK  # noqa: E402

PACKAGES = ("gimp-help-en", "gimp-help-common")
CORPUS = os.path.join(WORK, "gimp-help")
HELP_ROOT = os.path.join(CORPUS, "usr", "share", "gimp", "2.0", "help")
SITE_URL = "http://gimp-help.test/"  # page URLs for the in-memory speed test (nothing is fetched)


def ensure_corpus() -> str:
    """The unpacked manual's help root; downloads and unpacks the packages when missing."""
    if os.path.exists(os.path.join(HELP_ROOT, "en", "index.html")):
        return HELP_ROOT
    debs = os.path.join(WORK, "debs")
    os.makedirs(debs, exist_ok=True)
    download = ["apt-get", "download", *PACKAGES]
    if subprocess.run(download, cwd=debs).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(download, cwd=debs, check=True)
    for deb in sorted(glob.glob(os.path.join(debs, "*.deb"))):
        subprocess.run(["dpkg", "-x", deb, CORPUS], check=True)
    return HELP_ROOT


def load_pages(root: str) -> list[tuple[str, bytes]]:
    paths = sorted(glob.glob(os.path.join(root, "en", "**", "*.html"), recursive=True))
    return [(SITE_URL + os.path.relpath(p, root), open(p, "rb").read()) for p in paths]


# ---- 1. speed ------------------------------------------------------------------------


def raw_lxml(pages) -> int:
    found = 0
    for _url, data in pages:
        doc = lxml.html.document_fromstring(data)
        for img in doc.iter("img"):
            found += bool(img.get("src")) + bool(img.get("alt"))
    return found


def ours(pages, spec) -> int:
    from transforms.extract_alt_text import extract_pairs
    from transforms.image_source import join_url

    join_url.cache_clear()  # each pass starts cold: no URL resolved by an earlier pass
    found = 0
    for url, data in pages:
        pairs, rejected = extract_pairs(data, url, "text/html", spec)
        found += len(pairs) + len(rejected)
    return found


def best_seconds(fns, rounds: int) -> list[float]:
    """Best time of each function over ``rounds`` passes, interleaved (raw, ours, raw, ours, ...):
    on a shared machine a burst of load then hits both sides, and the best pass of each is
    the least disturbed one."""
    best = [float("inf")] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def speed(pages, rounds: int) -> dict:
    from pipeline.config import load_config
    from pipeline.specs import extract_spec

    cfg = load_config()
    spec = extract_spec(cfg)
    mb = sum(len(d) for _, d in pages) / 1e6
    raw_lxml(pages), ours(pages, spec)  # warm caches, imports
    raw_s, ours_s = best_seconds([functools.partial(raw_lxml, pages), functools.partial(ours, pages, spec)], rounds)
    return {"pages": len(pages), "mb": mb, "raw_s": raw_s, "ours_s": ours_s}


# ---- 2. crawl check --------------------------------------------------------------------


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Counter(html.parser.HTMLParser):
    """Independent of our code: <a href> targets and <img> alt attributes of one page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs, self.imgs, self.alts = [], 0, 0

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        elif tag == "img":
            self.imgs += 1
            self.alts += bool((values.get("alt") or "").strip())


def independent_count(root: str, start: str = "en/index.html") -> dict:
    """Pages reachable from ``start`` through <a href> to existing .html files, and their <img> counts."""
    seen, queue, imgs, alts = {start}, [start], 0, 0
    while queue:
        rel = queue.pop(0)
        parser = _Counter()
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            parser.feed(fh.read())
        imgs += parser.imgs
        alts += parser.alts
        for href in parser.hrefs:
            parts = urlsplit(urljoin("/" + rel, href.strip()))
            if parts.scheme or parts.netloc:
                continue  # another site
            target = posixpath.normpath(unquote(parts.path)).lstrip("/")
            if target.endswith(".html") and target not in seen and os.path.isfile(os.path.join(root, target)):
                seen.add(target)
                queue.append(target)
    return {"pages": len(seen), "imgs": imgs, "imgs_with_alt": alts, "page_set": seen}




def pipeline_crawl(root: str, work: str) -> dict:
    """FetchPages + ExtractAltText over the served manual: counts by kind, and the pages crawled."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipeline.config import load_config
    from pipeline.runners import make_runner
    from pipeline.specs import client_settings, crawl_spec, extract_spec
    from transforms.crawl_frontier import FetchPages
    from transforms.extract_alt_text import ExtractAltText

    # max_depth 3: the index links every page of the manual (depth 1), deeper levels are empty;
    # each level is stages of the graph (transforms/crawl_frontier.py), so 100 would cost minutes
    cfg = load_config(overrides=["fetch.allow_private_networks=true", "crawl.max_depth=3",
                                 "crawl.max_pages=100000"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out = os.path.join(work, "crawl_counts")
    try:
        options = PipelineOptions([])
        with beam.Pipeline(runner=make_runner(options), options=options) as p:
            pages, failures = (p | "Seed" >> beam.Create([base + "en/index.html"])
                               | "FetchPages" >> FetchPages(crawl_spec(cfg),
                                                            client_settings(cfg, pool_size=cfg.crawl.concurrency)))
            pairs, rejected = pages | "ExtractAltText" >> ExtractAltText(extract_spec(cfg))
            events = (pages | "PageEvent" >> beam.Map(lambda pg: ("page", pg.url.removeprefix(base))),
                      failures | "FailEvent" >> beam.Map(lambda f: ("failure", f"{f.reason.value} {f.url.removeprefix(base)}")),
                      pairs | "PairEvent" >> beam.Map(lambda r: ("pair_alt" if r.caption else "pair_no_alt", "")),
                      rejected | "RejectEvent" >> beam.Map(lambda r: ("rejected_alt" if r.caption else "rejected_no_alt",
                                                                       r.reason)))
            (events | "AllEvents" >> beam.Flatten() | "ToJson" >> beam.Map(json.dumps)
             | "WriteCounts" >> beam.io.WriteToText(out, shard_name_template="", num_shards=1))
    finally:
        server.shutdown()
        server.server_close()
    with open(out) as fh:
        rows = [json.loads(line) for line in fh]
    return {"counts": Counter(kind for kind, _ in rows), "pages": {v for k, v in rows if k == "page"},
            "failures": sorted(v for k, v in rows if k == "failure"),
            "rejected": Counter(v for k, v in rows if k.startswith("rejected"))}


def report_crawl(root: str, work: str) -> None:
    start = time.perf_counter()
    crawl = pipeline_crawl(root, work)
    seconds = time.perf_counter() - start
    indep = independent_count(root)
    c = crawl["counts"]
    dupes = [f for f in crawl["failures"] if f.startswith("crawl.duplicate_page")]
    ours_pages = crawl["pages"] | {f.split(" ", 1)[1] for f in dupes}
    with_alt = c["pair_alt"] + c["rejected_alt"]
    print(f"\ncrawl of the manual from en/index.html on 127.0.0.1 ({seconds:.1f} s, FetchPages + ExtractAltText):")
    print(f"  pages fetched {len(crawl['pages'])} + duplicates {len(dupes)} = {len(ours_pages)};  "
          f"other failures {len(crawl['failures']) - len(dupes)}: {crawl['failures'][:5] if len(crawl['failures']) > len(dupes) else '-'}")
    print(f"  <img> extracted {c['pair_alt'] + c['pair_no_alt'] + c['rejected_alt'] + c['rejected_no_alt']}: "
          f"pairs with alt {c['pair_alt']}, without alt {c['pair_no_alt']}, "
          f"rejected at extraction {dict(crawl['rejected']) or '-'}")
    print(f"independent count (html.parser, files on disk): reachable pages {indep['pages']}, "
          f"<img> {indep['imgs']}, with non-empty alt {indep['imgs_with_alt']}")
    print(f"  pages: crawled-or-duplicate {len(ours_pages)} vs reachable {indep['pages']}; "
          f"only on disk walk: {sorted(indep['page_set'] - ours_pages)[:5]}; "
          f"only in crawl: {sorted(ours_pages - indep['page_set'])[:5]}")
    print(f"  <img> with alt: extracted {with_alt} vs counted {indep['imgs_with_alt']} "
          f"(difference {with_alt - indep['imgs_with_alt']:+d}); images on duplicate pages are not extracted again")
    for dupe in dupes[:10]:
        print(f"  duplicate: {dupe}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7, help="timed passes of each parser; the best counts")
    ap.add_argument("--skip-crawl", action="store_true", help="speed only")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, force=True)  # Beam logs to the root logger
    root = ensure_corpus()
    pages = load_pages(root)
    r = speed(pages, args.rounds)
    raw_rate, ours_rate = r["pages"] / r["raw_s"], r["pages"] / r["ours_s"]
    print(f"corpus: gimp-help-en, {r['pages']} pages, {r['mb']:.2f} MB; best of {args.rounds} passes, one process")
    print(f"raw lxml.html parse + iterate img  {raw_rate:8.1f} pages/s  {r['mb'] / r['raw_s']:6.2f} MB/s")
    print(f"wit extract_pairs (everything)     {ours_rate:8.1f} pages/s  {r['mb'] / r['ours_s']:6.2f} MB/s")
    ratio = ours_rate / raw_rate
    print(f"ratio ours/raw {ratio:.2f}x (target >= 0.4x): {'ok' if ratio >= 0.4 else 'BELOW TARGET'}")
    if not args.skip_crawl:
        report_crawl(root, WORK)
    return 0 if ratio >= 0.4 else 1


if __name__ == "__main__":
    sys.exit(main())
