"""FetchImages: download (and optionally decode/resize) the image of each pair, politely.

Input: ``AltPair``. Output: ``(images, rejected)`` — ``FetchedImage`` (bytes,
final URL, sniffed MIME type), or ``ResizedImage`` when a ``ResizeSpec`` is
given; rejections with ``fetch.timeout``, ``fetch.connect``, ``fetch.dns``,
``fetch.tls``, ``fetch.http_4xx``, ``fetch.http_5xx``, ``fetch.too_large``,
``fetch.not_image`` (magic bytes are not an image, whatever the Content-Type),
``fetch.unsupported_format`` (AVIF/HEIF, ICO; SVG unless ``resize.svg``),
``fetch.svg_disabled`` (``resize.svg`` off and the Content-Type says SVG: stopped after the headers),
``fetch.robots_disallowed``, ``fetch.noai``, ``fetch.private_address``,
``fetch.redirect_loop``, ``fetch.too_many_redirects``, ``fetch.bad_response``,
``fetch.incomplete_body``, ``fetch.bad_url``, ``fetch.robots_unavailable`` (a 5xx or
unreachable robots.txt: RFC 9309 complete disallow), ``fetch.host_too_slow`` (Crawl-delay or
Retry-After over ``fetch.max_host_delay_s``: no wait is unbounded), ``fetch.tdm_reserved``
(TDMRep header or the origin's tdmrep.json) — and, with resizing, the ``image.*`` reasons of
transforms/resize.py.

Internal errors (pipeline/faults.py): an unexpected exception while one pair is
downloaded is that pair's ``fetch.internal_error`` (the HostScheduler hands the
failed pair back and frees its host's slot); one while its image is decoded or
resized is ``image.internal_error``. The detail names the exception and where.

Shape: pairs are keyed by host and grouped (transforms/host_keys.py: a host with
more than ``fetch.urls_per_key`` pairs is spread over up to ``fetch.per_host_concurrency``
keys, which any runner may give to different workers). Per-host limits hold for the
host as a whole, not per worker or key (transforms/host_share.py): each key's
HostScheduler lane runs its share of ``fetch.per_host_concurrency`` (the shares add
up to it), and the client starts a key's requests only in the key's wall-clock slices
of the host's interval (``fetch.per_host_min_interval_s``, Crawl-delay). Across keys
the worker runs ``fetch.concurrency`` downloads at once (transforms/host_fetch.py).

Largest key at 100M pairs: a host's pairs over ``count`` keys, ``n / count`` each;
for a 10M-pair host and ``per_host_concurrency`` 8, 1.25M pairs, read into a bounded
buffer (transforms/fetch_scheduler.py) while they download.

Resizing in the same threads (Pillow releases the GIL) uses every core of
the worker and drops the original bytes as soon as they are decoded. With
``spill_dir`` the resized bytes go to blob files there as they come, and the
records carry references (transforms/image_store.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import operator
import os
import threading
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

import apache_beam as beam

from pipeline import faults, metrics
from pipeline.records import AltPair, DropReason, FetchedImage, Rejection, ResizedImage
from transforms import http_client
from transforms.host_fetch import HostKeyedFetchFn, client_for
from transforms.host_keys import KeyByHostShard
from transforms.host_share import WHOLE, HostShare
from transforms.http_client import ClientSettings, HttpClient
from transforms.image_store import SpillImages
from transforms.resize import ResizeSpec, image_internal_error, resize_fetched

log = logging.getLogger(__name__)

_FETCH_REASONS = {
    http_client.TIMEOUT: DropReason.FETCH_TIMEOUT,
    http_client.CONNECT: DropReason.FETCH_CONNECT,
    http_client.DNS: DropReason.FETCH_DNS,
    http_client.TLS: DropReason.FETCH_TLS,
    http_client.HTTP_4XX: DropReason.FETCH_HTTP_4XX,
    http_client.HTTP_5XX: DropReason.FETCH_HTTP_5XX,
    http_client.TOO_LARGE: DropReason.FETCH_TOO_LARGE,
    http_client.ROBOTS: DropReason.FETCH_ROBOTS,
    http_client.NOAI: DropReason.FETCH_NOAI,
    http_client.PRIVATE: DropReason.FETCH_PRIVATE,
    http_client.REDIRECT_LOOP: DropReason.FETCH_REDIRECT_LOOP,
    http_client.TOO_MANY_REDIRECTS: DropReason.FETCH_TOO_MANY_REDIRECTS,
    http_client.BAD_RESPONSE: DropReason.FETCH_BAD_RESPONSE,
    http_client.INCOMPLETE: DropReason.FETCH_INCOMPLETE,
    http_client.BAD_URL: DropReason.FETCH_BAD_URL,
    http_client.ROBOTS_UNAVAILABLE: DropReason.FETCH_ROBOTS_UNAVAILABLE,
    http_client.HOST_TOO_SLOW: DropReason.FETCH_HOST_TOO_SLOW,
    http_client.TDM_RESERVED: DropReason.FETCH_TDM_RESERVED,
    http_client.REFUSED_TYPE: DropReason.FETCH_SVG_DISABLED,  # the only refused type: SVG_TYPES
}

# (magic, MIME) of the formats Pillow decodes for us.
_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def sniff_image_type(data: bytes) -> Optional[str]:
    """MIME type of a decodable image from its first bytes, or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def sniff_unsupported(data: bytes) -> Optional[str]:
    """Name of an image format we recognise but do not decode (SVG, AVIF/HEIF, ICO)."""
    head = data[:512].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "svg"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return data[8:12].decode("ascii")
    if data[:4] == b"\x00\x00\x01\x00":
        return "ico"
    return None


SVG_TYPES = ("image/svg+xml",)  # not downloaded when resize.svg is off (ClientSettings.refuse_types)


def fetch_image(client: HttpClient, pair: AltPair, svg: bool) -> FetchedImage | Rejection:
    """One pair's download as a FetchedImage, or its Rejection; ``svg``: ResizeSpec.svg (kept, not refused)."""
    result = client.get(pair.image_url, check_noai=True)
    if not result.ok:
        reason = _FETCH_REASONS.get(result.failure, DropReason.FETCH_ERROR)
        return Rejection.of(pair, reason, result.detail)
    mime = sniff_image_type(result.data)
    if mime is None:
        other = sniff_unsupported(result.data)
        if other == "svg" and svg:  # rasterised by transforms/svg.py
            return FetchedImage(pair=pair, data=result.data, final_url=result.final_url,
                                mime="image/svg+xml", status=result.status)
        if other:
            return Rejection.of(pair, DropReason.FETCH_UNSUPPORTED, f"{other} ({len(result.data)} bytes)")
        head = result.data[:16]
        detail = "empty body" if not result.data else f"first bytes {head!r}"
        return Rejection.of(pair, DropReason.FETCH_NOT_IMAGE, f"Content-Type {result.mime or '?'}; {detail}")
    return FetchedImage(pair=pair, data=result.data, final_url=result.final_url,
                        mime=mime, status=result.status)


def fetch_and_resize(client: HttpClient, spec: Optional[ResizeSpec], pair: AltPair, pool=None,
                     slots: Optional[threading.Semaphore] = None, share: HostShare = WHOLE):
    """Download, then (with a spec) decode and resize in the same thread, or in ``pool``'s processes.

    ``share``: the key of a split host this download runs for (its request spacing).

    ``slots`` caps how many threads decode at once. Decoding is CPU work: more
    decodes than cores only adds GIL hand-offs and cache misses, while the
    other threads keep downloading (measured: 2,000 JPEGs on 2 cores, 32
    threads, 17.3 s with no cap and 14.1 s with 2 slots).
    """
    shared = client_for(client, share)
    out = fetch_image(shared, pair, svg=spec is not None and spec.svg)
    if spec is None or isinstance(out, Rejection):
        return out
    with slots or contextlib.nullcontext():
        return resize_isolated(out, spec, pool)


def resize_isolated(fetched: FetchedImage, spec: ResizeSpec, pool=None):
    """``resize_fetched``, with an unexpected exception as this image's ``image.internal_error``."""
    try:
        return resize_fetched(fetched, spec, pool)
    except Exception as exc:  # a bug one image trips costs that image, not the run
        return image_internal_error(fetched, exc)


def download_failed(pair: AltPair, exc: Exception) -> Rejection:
    """The HostScheduler's stand-in for a pair whose fetch raised: ``fetch.internal_error``."""
    return Rejection.of(pair, DropReason.FETCH_INTERNAL,
                        faults.internal_error(DropReason.FETCH_INTERNAL, exc, pair.image_url))


def host_of(pair: AltPair) -> str:
    """The grouping key of a pair's download: the URL's netloc. Never raises: a URL
    ``urlsplit`` refuses (a bad IPv6 literal) groups under its raw authority and
    is then refused by the client as ``fetch.bad_url``."""
    try:
        return urlsplit(pair.image_url).netloc.lower()
    except ValueError:
        return pair.image_url.partition("://")[2].partition("/")[0].lower()


def decode_slots() -> int:
    """Decodes at once in one worker's fetch threads: its usable CPU cores."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _image_pool(processes: int):
    """Worker processes for decode + resize + encode, or None (0: in the fetch threads).

    Pillow releases the GIL while decoding and resizing but not while encoding, and
    hashing is small numpy calls: with many images per second, those serialise the
    fetch threads on one core. Spawned processes import only transforms/imaging.py.
    """
    if processes <= 0:
        return None
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))


class _FetchHostsFn(HostKeyedFetchFn):
    """HostKeyedFetchFn over AltPairs: download, and with a ResizeSpec decode and resize."""

    def __init__(self, settings: ClientSettings, concurrency: int, per_host: int,
                 resize: Optional[ResizeSpec], processes: int):
        if resize is not None and not resize.svg:  # SVG would only be dropped: stop after its headers
            settings = dataclasses.replace(settings, refuse_types=SVG_TYPES)
        super().__init__(settings, concurrency, per_host)
        self.resize, self.processes = resize, processes
        self.pool = self.slots = None

    def setup(self):
        super().setup()
        self.pool = _image_pool(self.processes) if self.resize is not None else None
        self.slots = threading.BoundedSemaphore(self.processes or decode_slots())

    def teardown(self):
        super().teardown()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def work(self, pair: AltPair, share: HostShare):
        return fetch_and_resize(self.client, self.resize, pair, self.pool, self.slots, share)

    def failed(self, pair: AltPair, exc: Exception):
        return download_failed(pair, exc)

    def route(self, out):
        if isinstance(out, Rejection):
            metrics.inc_reason(DropReason(out.reason))
            return beam.pvalue.TaggedOutput("rejected", out)
        metrics.inc(metrics.Counter.IMAGES_FETCHED)
        if isinstance(out, ResizedImage):
            metrics.inc(metrics.Counter.IMAGES_RESIZED)
        return out


@dataclass(frozen=True)
class FetchSpec:
    """How FetchImages spreads the work (pipeline/specs.py: ``fetch_spec``)."""

    concurrency: int  # fetch.concurrency: downloads at once per worker
    per_host: int  # fetch.per_host_concurrency: at once per host, over all its keys
    processes: int  # resize.processes: decode/resize worker processes (0: in the fetch threads)
    urls_per_key: int  # fetch.urls_per_key: a host with more pairs is spread over several keys
    max_keys: int  # fetch.max_keys_per_host, resolved: at most this many keys per host


class FetchImages(beam.PTransform):
    """AltPair -> (FetchedImage | ResizedImage, Rejection), grouped by host (hot hosts over several keys)."""

    def __init__(self, settings: ClientSettings, spec: FetchSpec, resize: Optional[ResizeSpec] = None,
                 spill_dir: Optional[str] = None):
        super().__init__()
        self.settings, self.resize, self.spill_dir = settings, resize, spill_dir
        self.concurrency, self.per_host = spec.concurrency, spec.per_host
        self.processes, self.urls_per_key = spec.processes, spec.urls_per_key
        self.max_keys = min(spec.per_host, spec.max_keys)

    def expand(self, pairs):
        out = (
            pairs
            | "KeyByHost" >> KeyByHostShard(host_of, operator.attrgetter("image_url"), self.urls_per_key,
                                            self.max_keys)
            | "GroupByHost" >> beam.GroupByKey()
            | "Download" >> beam.ParDo(_FetchHostsFn(self.settings, self.concurrency, self.per_host,
                                                     self.resize, self.processes))
            .with_outputs("rejected", main="fetched")
        )
        if self.spill_dir and self.resize is not None:
            return out.fetched | "SpillImages" >> SpillImages(self.spill_dir), out.rejected
        return out.fetched, out.rejected

