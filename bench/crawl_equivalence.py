"""The crawl's outcome, recorded once and compared after a change: pages, failures, pairs, counters.

Runs the production FetchPages + ExtractAltText on two loopback webs:
  sample   the generated sample web (pipeline/sample, as tests/e2e serve it), seeds = its seed URLs
  gimp     the GIMP user manual (Debian gimp-help-en + gimp-help-common, unpacked into bench/_work/
           by bench/extract.py's ensure_corpus), crawled from en/index.html
each under a few crawl configs (the defaults, and small max_pages / max_depth to exercise the caps).
For each run it writes the sorted pages (url, depth, sha1 of the bytes), failures (url, reason,
detail), pairs (page_url, image_url, caption, position), extraction rejections and the ``wit``
counters, with the server's base URL replaced by ``BASE`` (the port changes between runs).

    .venv/bin/python bench/crawl_equivalence.py --record      # save bench/_work/crawl_equivalence/*.json
    .venv/bin/python bench/crawl_equivalence.py [--workers 2] # compare with the saved runs

Compare mode exits non-zero when any run differs from its recording (or has none), and prints
the counts and the wall time of both.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import random
import sys
import threading
import time
from http.server import ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import WORK  # noqa: E402

SAVED = os.path.join(WORK, "crawl_equivalence")

# (name, web, crawl overrides)
RUNS = (
    ("tangle", "tangle", ["crawl.max_depth=4", "crawl.max_pages=1000"]),
    ("tangle_any_host", "tangle", ["crawl.max_depth=4", "crawl.max_pages=1000", "crawl.same_host=false"]),
    ("tangle_cap40", "tangle", ["crawl.max_depth=6", "crawl.max_pages=40"]),
    ("tangle_any_host_cap40", "tangle", ["crawl.max_depth=6", "crawl.max_pages=40", "crawl.same_host=false"]),
    ("tangle_depth1_cap25", "tangle", ["crawl.max_depth=1", "crawl.max_pages=25", "crawl.same_host=false"]),
    ("tangle_canonical_only", "tangle", ["crawl.max_depth=4", "crawl.duplicate_content=false"]),
    ("sample", "sample", ["crawl.max_depth=3", "crawl.max_pages=200"]),
    ("sample_cap4", "sample", ["crawl.max_depth=3", "crawl.max_pages=4"]),
    ("sample_depth1_cap6", "sample", ["crawl.max_depth=1", "crawl.max_pages=6"]),
    ("sample_no_dupe_checks", "sample", ["crawl.canonical=false", "crawl.duplicate_content=false"]),
    # the manual's index links every page: depth 1 holds the rest, deeper levels are empty
    ("gimp", "gimp", ["crawl.max_depth=3", "crawl.max_pages=100000"]),
    ("gimp_depth1_cap50", "gimp", ["crawl.max_depth=1", "crawl.max_pages=50"]),
    ("gimp_depth3_cap300", "gimp", ["crawl.max_depth=3", "crawl.max_pages=300"]),
)


def tangle_routes(n: int = 240, seed: int = 7) -> dict:
    """A random web with the crawl's hard cases: ``{path: (status, headers, body)}``.

    Pages link to each other (relative and absolute, also through the other host name of the
    same server, ``ALIAS``), to missing pages, redirects, images, a robots-disallowed path and
    noai pages; some name another page as canonical, some are byte-identical copies of another.
    Absolute links say ``HOST``/``ALIAS``; the server fills in its own netlocs.
    """
    rng = random.Random(seed)
    routes = {"/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n")}
    html = {"Content-Type": "text/html"}
    for i in range(n):
        links = []
        for _ in range(rng.randint(1, 7)):
            j, kind = rng.randrange(n), rng.random()
            if kind < 0.45:
                links.append(f"/t/{j:03d}.html")
            elif kind < 0.55:
                links.append(f"{j:03d}.html#frag")  # relative to /t/
            elif kind < 0.65:
                links.append(f"http://ALIAS/t/{j:03d}.html")
            elif kind < 0.70:
                links.append(f"http://HOST/t/{j:03d}.html")
            elif kind < 0.75:
                links.append(f"/r/{j:03d}")  # 302 to /t/j
            elif kind < 0.80:
                links.append(f"/copy/{j:03d}.html")
            elif kind < 0.84:
                links.append(f"/missing/{j}.html")
            elif kind < 0.87:
                links.append(f"/private/{j}.html")
            elif kind < 0.90:
                links.append(f"/img/{j}.jpg")
            elif kind < 0.93:
                links.append(f"/noai/{j}.html")
            else:
                links.append(f"/t/{j:03d}.html?v={rng.randrange(3)}")
        head = ""
        if rng.random() < 0.15:
            head = f'<link rel="canonical" href="/t/{rng.randrange(n):03d}.html">'
        elif rng.random() < 0.05:
            head = f'<link rel="canonical" href="http://ALIAS/t/{i:03d}.html">'
        body = "".join(f'<a href="{u}">l</a>' for u in links)
        body += f'<img src="/img/{i}.jpg" alt="picture number {i} of the tangle">'
        routes[f"/t/{i:03d}.html"] = (200, html, f"<html><head>{head}</head><body>{body}</body></html>".encode())
        routes[f"/r/{i:03d}"] = (302, {"Location": f"/t/{i:03d}.html"}, b"")
        routes[f"/noai/{i}.html"] = (200, {**html, "X-Robots-Tag": "noai"}, b"<p>no</p>")
        routes[f"/img/{i}.jpg"] = (200, {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff" + bytes(20))
        routes[f"/private/{i}.html"] = (200, html, b"<p>private</p>")
    for i in range(n):
        # a copy at another path: same bytes, so duplicate content (its relative links resolve elsewhere)
        routes[f"/copy/{i:03d}.html"] = routes[f"/t/{(i * 7) % n:03d}.html"]
    return routes


class _TangleServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client closing a keep-alive connection is no news


def _tangle_handler(routes: dict):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            port = self.server.server_address[1]
            status, headers, body = routes.get(self.path.split("?")[0], (404, {}, b"missing"))
            body = body.replace(b"HOST", f"127.0.0.1:{port}".encode()).replace(b"ALIAS", f"localhost:{port}".encode())
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


class _Served:
    """A web on 127.0.0.1 port 0: the sample site, or a directory through http.server."""

    def __init__(self, web: str):
        self.web = web
        self.alias = "http://ALIAS.invalid"

    def __enter__(self):
        if self.web == "sample":
            from pipeline.sample import SampleServer, generate_site

            self.server = SampleServer(generate_site(seed=0)).start()
            self.base, self.seeds = self.server.base_url, self.server.seed_urls
        elif self.web == "tangle":
            self.server = _TangleServer(("127.0.0.1", 0), _tangle_handler(tangle_routes()))
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
            port = self.server.server_address[1]
            self.base, self.alias = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
            self.seeds = [self.base + "/t/000.html", self.base + "/t/001.html#x", self.alias + "/t/002.html",
                          self.base + "/t/000.html", self.alias + "/r/003"]
        else:
            from bench.extract import _Quiet, ensure_corpus

            root = ensure_corpus()
            self.server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
            self.server.daemon_threads = True
            threading.Thread(target=self.server.serve_forever, daemon=True).start()
            self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
            self.seeds = [self.base + "/en/index.html"]
        return self

    def __exit__(self, *exc):
        if self.web == "sample":
            self.server.stop()
        else:
            self.server.shutdown()
            self.server.server_close()


def _fetch_pages(cfg, settings):
    from pipeline.specs import crawl_spec
    from transforms.crawl_frontier import FetchPages

    return FetchPages(crawl_spec(cfg), settings)


def _sha1(html: bytes, netlocs: tuple) -> str:
    """sha1 of a page with the server's own URLs written out as BASE/ALIAS (the port changes)."""
    for netloc, name in zip(netlocs, (b"BASE", b"ALIAS")):
        html = html.replace(netloc, name)
    return hashlib.sha1(html).hexdigest()


def _rows(page_or_failure_or_pair, kind: str):
    import json as _json

    return _json.dumps([kind, page_or_failure_or_pair])


def crawl_once(web: str, overrides: list, beam_args: list) -> dict:
    """Pages, failures, pairs, rejections and counters of one crawl (base URL replaced by BASE)."""
    import apache_beam as beam

    from pipeline.config import load_config
    from pipeline.metrics import NAMESPACE
    from pipeline.runners import make_options, make_runner
    from pipeline.specs import client_settings, extract_spec
    from transforms.extract_alt_text import ExtractAltText

    cfg = load_config(overrides=["fetch.allow_private_networks=true", "fetch.retries=0", *overrides])
    work = os.path.join(SAVED, "_run")
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "events")
    with _Served(web) as served:
        options = make_options(beam_args)
        p = beam.Pipeline(runner=make_runner(options), options=options)
        settings = client_settings(cfg, pool_size=cfg.crawl.concurrency)
        netlocs = (served.base.encode(), served.alias.encode())
        pages, failures = p | "Seeds" >> beam.Create(served.seeds) | "FetchPages" >> _fetch_pages(cfg, settings)
        pairs, rejected = pages | "ExtractAltText" >> ExtractAltText(extract_spec(cfg))
        events = (
            pages | "PageRow" >> beam.Map(lambda pg: _rows([pg.url, pg.depth, _sha1(pg.html, netlocs),
                                                           pg.content_type, pg.status], "page")),
            failures | "FailureRow" >> beam.Map(lambda f: _rows([f.url, f.reason.value, f.detail], "failure")),
            # no keys: a pair's key hashes its URLs, whose port changes between runs
            pairs | "PairRow" >> beam.Map(lambda r: _rows([r.page_url, r.image_url, r.caption, r.position], "pair")),
            rejected | "RejectRow" >> beam.Map(lambda r: _rows([r.reason, r.page_url, r.image_url, r.caption],
                                                               "rejected")),
        )
        (events | "AllRows" >> beam.Flatten()
         | "Write" >> beam.io.WriteToText(out, shard_name_template="", num_shards=1))
        start = time.perf_counter()
        result = p.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - start
        base, alias = served.base, served.alias
    counters = {}
    for c in result.metrics().query()["counters"]:
        if c.key.metric.namespace == NAMESPACE:
            counters[c.key.metric.name] = counters.get(c.key.metric.name, 0) + c.committed
    got = {"page": [], "failure": [], "pair": [], "rejected": []}
    with open(out, encoding="utf-8") as fh:
        for line in fh:
            kind, row = json.loads(line.replace(base, "BASE").replace(alias, "ALIAS"))
            got[kind].append(row)
    return {"pages": sorted(got["page"]), "failures": sorted(got["failure"]), "pairs": sorted(got["pair"]),
            "rejected": sorted(got["rejected"]), "counters": dict(sorted(counters.items())), "seconds": seconds}


def _summary(run: dict) -> str:
    return (f"pages {len(run['pages'])}, failures {len(run['failures'])}, pairs {len(run['pairs'])}, "
            f"rejected {len(run['rejected'])}, {run['seconds']:.1f} s")


def _diff(old: dict, new: dict) -> list[str]:
    problems = []
    for part in ("pages", "failures", "pairs", "rejected", "counters"):
        if old[part] != new[part]:
            if isinstance(old[part], dict):
                problems.append(f"{part}: {old[part]} != {new[part]}")
                continue
            a, b = {json.dumps(r) for r in old[part]}, {json.dumps(r) for r in new[part]}
            problems.append(f"{part}: {len(old[part])} vs {len(new[part])}; only old {sorted(a - b)[:3]}; "
                            f"only new {sorted(b - a)[:3]}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--record", action="store_true", help="save the runs instead of comparing")
    ap.add_argument("--only", default="", help="comma-separated run names")
    ap.add_argument("--workers", type=int, default=1, help="multi_processing worker processes (1: in process)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR, force=True)  # Beam's sink and worker notices drown the table
    beam_args = ([] if args.workers <= 1 else
                 ["--direct_running_mode=multi_processing", f"--direct_num_workers={args.workers}"])
    os.makedirs(SAVED, exist_ok=True)
    failed = 0
    for name, web, overrides in RUNS:
        if args.only and name not in args.only.split(","):
            continue
        new = crawl_once(web, overrides, beam_args)
        path = os.path.join(SAVED, f"{name}.json")
        if args.record:
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(new, fh, indent=0, sort_keys=True)
            print(f"{name:24s} recorded: {_summary(new)}")
            continue
        if not os.path.exists(path):
            print(f"{name:24s} NO RECORDING at {path}")
            failed += 1
            continue
        with open(path, encoding="utf-8") as fh:
            old = json.load(fh)
        problems = _diff(old, new)
        failed += bool(problems)
        print(f"{name:24s} {'SAME' if not problems else 'DIFFERENT'}: new {_summary(new)}; "
              f"recorded {old['seconds']:.1f} s ({old['seconds'] / max(new['seconds'], 1e-9):.2f}x)")
        for problem in problems:
            print(f"    {problem}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
