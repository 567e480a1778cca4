"""FetchImages: download the image of each pair, politely and with guards.

Input: ``AltPair``. Output: ``(fetched, rejected)`` — ``FetchedImage`` with the
bytes, final URL and sniffed MIME type, or a ``Rejection`` with one of
``fetch.timeout``, ``fetch.connect``, ``fetch.dns``, ``fetch.http_4xx``,
``fetch.http_5xx``, ``fetch.too_large``, ``fetch.not_image`` (magic bytes are
not an image format, whatever the Content-Type says), ``fetch.robots_disallowed``,
``fetch.noai``, ``fetch.private_address``, ``fetch.redirect_loop``, ``fetch.bad_url``.

Pairs are batched and each batch is downloaded by a thread pool that lives for
the DoFn's lifetime (``setup()``), sharing one pooled client: downloads are
I/O-bound, so threads give the concurrency; outputs keep the input order.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import apache_beam as beam

from pipeline import metrics
from pipeline.records import AltPair, DropReason, FetchedImage, Rejection
from transforms import http_client
from transforms.http_client import ClientSettings, HttpClient

log = logging.getLogger(__name__)

_FETCH_REASONS = {
    http_client.TIMEOUT: DropReason.FETCH_TIMEOUT,
    http_client.CONNECT: DropReason.FETCH_CONNECT,
    http_client.DNS: DropReason.FETCH_DNS,
    http_client.HTTP_4XX: DropReason.FETCH_HTTP_4XX,
    http_client.HTTP_5XX: DropReason.FETCH_HTTP_5XX,
    http_client.TOO_LARGE: DropReason.FETCH_TOO_LARGE,
    http_client.ROBOTS: DropReason.FETCH_ROBOTS,
    http_client.NOAI: DropReason.FETCH_NOAI,
    http_client.PRIVATE: DropReason.FETCH_PRIVATE,
    http_client.REDIRECT_LOOP: DropReason.FETCH_REDIRECT_LOOP,
    http_client.BAD_URL: DropReason.FETCH_BAD_URL,
}

# (offset, magic) -> MIME; enough of each format to tell an image from HTML/JSON/errors.
_MAGIC = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
)


def sniff_image_type(data: bytes) -> Optional[str]:
    """MIME type of an image from its first bytes, or None if it is not one we decode."""
    for offset, magic, mime in _MAGIC:
        if data[offset:offset + len(magic)] == magic:
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "image/avif" if data[8:12].startswith(b"avi") else "image/heic"
    return None


def fetch_image(client: HttpClient, pair: AltPair) -> FetchedImage | Rejection:
    """One pair's download as a FetchedImage, or its Rejection."""
    result = client.get(pair.image_url, check_noai=True)
    if not result.ok:
        reason = _FETCH_REASONS.get(result.failure, DropReason.FETCH_ERROR)
        return Rejection.of(pair, reason, result.detail)
    mime = sniff_image_type(result.data)
    if mime is None:
        head = result.data[:16]
        return Rejection.of(pair, DropReason.FETCH_NOT_IMAGE,
                            f"Content-Type {result.mime or '?'}; first bytes {head!r}")
    return FetchedImage(pair=pair, data=result.data, final_url=result.final_url,
                        mime=mime, status=result.status)


class _FetchBatchFn(beam.DoFn):
    def __init__(self, settings: ClientSettings, concurrency: int):
        self.settings = settings
        self.concurrency = concurrency
        self.client = None
        self.pool = None

    def setup(self):
        self.client = HttpClient(self.settings)
        self.pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="wit-fetch")

    def teardown(self):
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
        if self.client is not None:
            self.client.close()

    def process(self, batch):
        for out in self.pool.map(lambda p: fetch_image(self.client, p), batch):
            if isinstance(out, Rejection):
                metrics.inc_reason(DropReason(out.reason))
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                metrics.inc(metrics.Counter.IMAGES_FETCHED)
                yield out


class FetchImages(beam.PTransform):
    """AltPair -> (FetchedImage, Rejection)."""

    def __init__(self, settings: ClientSettings, concurrency: int = 32):
        super().__init__()
        self.settings = settings
        self.concurrency = concurrency

    def expand(self, pairs):
        out = (
            pairs
            | "Batch" >> beam.BatchElements(min_batch_size=self.concurrency,
                                            max_batch_size=4 * self.concurrency)
            | "Download" >> beam.ParDo(_FetchBatchFn(self.settings, self.concurrency))
            .with_outputs("rejected", main="fetched")
        )
        return out.fetched, out.rejected


def client_settings(fetch_cfg, pool_size: Optional[int] = None) -> ClientSettings:
    """ClientSettings from the ``fetch`` config section."""
    return ClientSettings(
        connect_timeout_s=fetch_cfg.connect_timeout_s,
        read_timeout_s=fetch_cfg.read_timeout_s,
        total_timeout_s=fetch_cfg.total_timeout_s,
        max_bytes=fetch_cfg.max_bytes,
        max_redirects=fetch_cfg.max_redirects,
        retries=fetch_cfg.retries,
        user_agent=fetch_cfg.user_agent,
        respect_robots=fetch_cfg.respect_robots,
        respect_noai=fetch_cfg.respect_noai,
        allow_private_networks=fetch_cfg.allow_private_networks,
        pool_size=pool_size or fetch_cfg.concurrency,
    )
