"""A whole `wit curate` of a real documentation site on loopback, images included.

Corpus: the GIMP user manual (Debian gimp-help-en + gimp-help-common, fetched and
unpacked by bench/extract.py's ``ensure_corpus``), served by a threaded http.server
on 127.0.0.1 (port 0) and curated from en/index.html with scoring off (no model is
needed to check the fetcher) and everything else at its defaults.

Checks "every present image is downloaded, with zero unexplained failures": every
pair that FetchImages or ResizeImages rejected is looked up on disk. A failure is
*explained* when the file is not there (a broken link in the manual), is not an
image we decode (its own bytes sniff as SVG/other: fetch.unsupported_format /
fetch.not_image), or fails to open with Pillow from disk too (image.undecodable).
Anything else is printed as unexplained and the script exits 1.

    .venv/bin/python bench/gimp_fetch.py
"""

from __future__ import annotations

import functools
import os
import posixpath
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.extract import _Quiet, ensure_corpus  # noqa: E402
from pipeline import shard_format  # noqa: E402
from pipeline.build import Inputs  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.run import run_curation  # noqa: E402
from transforms.fetch import sniff_image_type, sniff_unsupported  # noqa: E402

IMAGE_STAGES = ("FetchImages", "ResizeImages")


def explain(root: str, image_url: str, reason: str) -> str | None:
    """Why the file behind a failed image could not be had; None when it should have worked."""
    path = os.path.join(root, posixpath.normpath(unquote(urlsplit(image_url).path)).lstrip("/"))
    if not os.path.isfile(path):
        return "not on disk"
    with open(path, "rb") as fh:
        data = fh.read()
    if reason in ("fetch.unsupported_format", "fetch.not_image") and sniff_image_type(data) is None:
        return f"on disk as {sniff_unsupported(data) or 'non-image'}"
    if reason in ("image.undecodable", "image.too_many_pixels"):
        from PIL import Image

        try:
            with Image.open(path) as img:
                img.load()
        except Exception as exc:  # noqa: BLE001 - any Pillow failure on the file itself explains it
            return f"Pillow fails on the file too: {type(exc).__name__}"
    return None


def main() -> int:
    root = ensure_corpus()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    cfg = load_config(overrides=["fetch.allow_private_networks=true", "crawl.max_depth=100",
                                 "crawl.max_pages=100000", "score.enabled=false"])
    with tempfile.TemporaryDirectory() as work:
        seeds = os.path.join(work, "seeds.txt")
        with open(seeds, "w") as fh:
            fh.write(base + "en/index.html\n")
        start = time.perf_counter()
        try:
            stats = run_curation(cfg, Inputs(seeds_file=seeds), os.path.join(work, "out"))
        finally:
            server.shutdown()
            server.server_close()
        seconds = time.perf_counter() - start
        rejected = shard_format.read_rejections_table(os.path.join(work, "out")).to_pylist()
    funnel = {row["stage"]: row for row in stats["funnel"]}
    fetch_in = funnel["FetchImages"]["in"]
    failures = [r for r in rejected if r["stage"] in IMAGE_STAGES]
    explained = Counter()
    unexplained = []
    for r in failures:
        why = explain(root, r["image_url"], r["reason"])
        if why is None:
            unexplained.append(r)
        else:
            explained[f"{r['reason']} ({why})"] += 1
    print(f"wit curate of gimp-help-en on 127.0.0.1 in {seconds:.1f} s (score off): "
          f"{stats['pages']['fetched']} pages, {stats['pairs_extracted']} pairs, kept {stats['kept']}, "
          f"accounting {'ok' if stats['accounting_ok'] else 'BROKEN'}")
    print(f"  images asked for: {fetch_in}; downloaded and resized: {funnel['ResizeImages']['out']}; "
          f"failed {len(failures)} ({len(failures) - len(unexplained)} explained)")
    for why, n in explained.most_common():
        print(f"    {n:5d}  {why}")
    for r in unexplained[:20]:
        print(f"  UNEXPLAINED {r['reason']}: {r['image_url'].removeprefix(base)} ({r['detail']})")
    print(f"  rejections by reason: {dict(sorted(stats['rejected_by_reason'].items()))}")
    return 1 if unexplained or not stats["accounting_ok"] else 0


if __name__ == "__main__":
    sys.exit(main())
