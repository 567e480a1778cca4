"""ApplyBlocklists and BlockImageHashes: the curator's takedown and opt-out lists.

Input: ``AltPair`` (ApplyBlocklists, before anything is downloaded) and
``ResizedImage`` with ``sha256`` and ``phash`` set (BlockImageHashes, after
HashImages). Output: ``(kept, rejected)``. Drop reasons, one per list kind:

- ``blocklist.domain``: the image URL's host is a listed domain or a subdomain of one;
- ``blocklist.page_domain``: the page the image was found on is on a listed domain
  (a site that opted out is not harvested through its pages either);
- ``blocklist.url_prefix``: the image URL starts with a listed prefix;
- ``blocklist.url``: the image URL is listed exactly (scheme and host case, default
  port and fragment do not matter);
- ``blocklist.sha256``: the downloaded bytes' sha256 is listed;
- ``blocklist.phash``: the image's pHash is within ``phash_radius`` bits of a listed one.

After download the URL lists are checked again against the final URL, so a
redirect into a listed domain is dropped too (with the same reasons; the detail
says "after redirect"). The lists (filters/blocklist_lists.py) are read in the
DoFn's ``setup()`` on each worker, not pickled with the pipeline.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam
import numpy as np

from filters.base import Verdict, route
from filters.blocklist_lists import Blocklists, BlocklistSpec, canonical_url, host_of, load_blocklists
from pipeline.records import AltPair, DropReason, ResizedImage


def domain_match(blocklists: Blocklists, host: str) -> Optional[str]:
    """The listed domain ``host`` is, or is under; None if none."""
    labels = host.split(".") if host else []
    for i in range(len(labels)):
        suffix = ".".join(labels[i:])
        if suffix in blocklists.domains:
            return suffix
    return None


def check_url(blocklists: Blocklists, url: str, note: str = "") -> Verdict:
    """Domain, then exact URL, then prefix, for one image URL."""
    host = host_of(url)
    listed = domain_match(blocklists, host)
    if listed:
        return DropReason.BLOCKLIST_DOMAIN, f"{host} matches {listed}{note}"
    canonical = canonical_url(url)
    if canonical and canonical in blocklists.urls:
        return DropReason.BLOCKLIST_URL, f"listed URL{note}"
    for prefix in blocklists.prefixes_by_host.get(host, ()):
        if canonical.startswith(prefix):
            return DropReason.BLOCKLIST_URL_PREFIX, f"prefix {prefix}{note}"
    return None


def check_pair(blocklists: Blocklists, pair: AltPair) -> Verdict:
    """The image URL's lists first (the image is what is taken down), then the page's domain."""
    verdict = check_url(blocklists, pair.image_url)
    if verdict is not None:
        return verdict
    page_host = host_of(pair.page_url)
    listed = domain_match(blocklists, page_host)
    if listed:
        return DropReason.BLOCKLIST_PAGE_DOMAIN, f"page host {page_host} matches {listed}"
    return None


def nearest_phash(listed: np.ndarray, phash_hex: str) -> tuple[int, int]:
    """(Hamming distance, listed hash) of the listed pHash nearest to ``phash_hex``."""
    value = np.uint64(int(phash_hex, 16))
    distances = np.bitwise_count(listed ^ value)
    i = int(np.argmin(distances))
    return int(distances[i]), int(listed[i])


def check_image(blocklists: Blocklists, phashes: np.ndarray, image: ResizedImage) -> Verdict:
    """sha256, then pHash within the radius, then the final URL after redirects."""
    if image.sha256 and image.sha256.lower() in blocklists.sha256:
        return DropReason.BLOCKLIST_SHA256, f"sha256 {image.sha256[:16]}…"
    if image.phash and len(phashes):
        distance, listed = nearest_phash(phashes, image.phash)
        if distance <= blocklists.phash_radius:
            return DropReason.BLOCKLIST_PHASH, f"phash {image.phash} within {distance} bits of {listed:016x}"
    if image.final_url and image.final_url != image.pair.image_url:
        return check_url(blocklists, image.final_url, f" (after redirect to {image.final_url[:120]})")
    return None


class _BlocklistFn(beam.DoFn):
    def __init__(self, spec: BlocklistSpec):
        self.spec = spec
        self.lists: Optional[Blocklists] = None
        self.phashes = np.empty(0, dtype=np.uint64)

    def setup(self):
        self.lists = load_blocklists(self.spec)
        self.phashes = np.array(self.lists.phashes, dtype=np.uint64)

    def verdict(self, record) -> Verdict:
        if isinstance(record, AltPair):
            return check_pair(self.lists, record)
        return check_image(self.lists, self.phashes, record)

    def process(self, record):
        yield route(record, self.verdict(record))


class _Apply(beam.PTransform):
    def __init__(self, spec: BlocklistSpec):
        super().__init__()
        self.spec = spec

    def expand(self, records):
        out = records | "Check" >> beam.ParDo(_BlocklistFn(self.spec)).with_outputs("rejected", main="kept")
        return out.kept, out.rejected


class ApplyBlocklists(_Apply):
    """AltPair -> (kept, rejected) under the domain, URL prefix and URL lists; nothing downloaded yet."""


class BlockImageHashes(_Apply):
    """ResizedImage (hashed) -> (kept, rejected) under the sha256 and pHash lists and the final URL."""


def blocklist_stats(spec: BlocklistSpec) -> dict:
    """stats.json ``blocklist``: entries per list kind. Reads the lists, so a bad one fails before the run."""
    if not (spec.before_download or spec.after_download):
        return {}
    return {"entries": load_blocklists(spec).sizes(), "phash_radius": spec.phash_radius}

