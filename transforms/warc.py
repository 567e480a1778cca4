"""ReadWarc and UseArchivedImages: web archives (WARC, WARC.gz, Common Crawl WAT) as input.

Input: a path or glob (local or any Beam filesystem) of WARC files, gzipped per
record or not (warcio reads both). Output of ReadWarc, a dict of PCollections:

- ``pages``: ``Page`` for each 2xx HTML response (or ``resource``) record, for
  ExtractAltText like a crawled page. A ``WARC-Truncated`` page is still parsed
  (the cut is at its end; lxml recovers) and tallied as ``html_truncated``.
- ``images``: ``ArchivedImage`` for each 2xx response whose bytes are an image we
  decode, not truncated, within ``fetch.max_bytes`` and without ``X-Robots-Tag:
  noai`` (those are downloaded live instead, where the usual checks apply).
- ``pairs`` / ``rejected``: pairs from WAT metadata records (transforms/wat.py).
- ``failures``: page-funnel ``PageFailure``: ``warc.revisit`` (a revisit record
  of a page: no payload), ``warc.http_status`` (a non-2xx HTML response),
  ``crawl.too_large`` (HTML over ``crawl.max_page_bytes``), ``warc.unreadable``
  (a record warcio cannot parse: the rest of that file is skipped, logged).
- ``stats``: ``("warc", "records", {kind: n})`` for stats.json: every record
  read, by kind (html, image, image_truncated, other, revisit, wat, request, ...).

Nothing in an archive is fatal: each record is one tally kind.

UseArchivedImages joins pairs with archived images on the normalised image URL
(CoGroupByKey): a pair whose image the archive holds becomes a ``FetchedImage``
with those bytes (for ResizeImages; no request is made), the others go on to
FetchImages. Of several captures of one URL the latest (WARC-Date) is used.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass
from typing import Iterator, Optional

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.statusandheaders import StatusAndHeadersParserException

from pipeline import metrics
from pipeline.records import AltPair, DropReason, FetchedImage, Page, PageFailure, Rejection
from transforms.crawl import HTML_TYPES, normalize_url
from transforms.extract_alt_text import ExtractSpec
from transforms.fetch import sniff_image_type
from transforms.http_client import noai_directive
from transforms.wat import parse_wat_payload, wat_pairs

log = logging.getLogger(__name__)

_UNREADABLE = (ArchiveLoadFailed, StatusAndHeadersParserException, zlib.error, EOFError, OSError, ValueError)
_PAGE_KINDS = ("html", "html_truncated")


class WarcInputError(ValueError):
    """No file matches the --warc path or glob (a clear error before anything runs)."""


@dataclass(frozen=True)
class WarcLimits:
    max_page_bytes: int = 5_000_000  # crawl.max_page_bytes
    max_image_bytes: int = 20_000_000  # fetch.max_bytes
    respect_noai: bool = True  # fetch.respect_noai


@dataclass(frozen=True)
class ArchivedImage:
    """An image response found in an archive (ReadWarc -> UseArchivedImages only)."""

    url: str  # normalised WARC-Target-URI
    data: bytes
    mime: str  # sniffed from the bytes
    date: str = ""  # WARC-Date, ISO 8601: the latest capture wins
    status: int = 200


def expand_warc_paths(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted (WarcInputError when none)."""
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise WarcInputError(f"no WARC file matches {pattern!r}")
    return paths


def _target_uri(record) -> str:
    return (record.rec_headers.get_header("WARC-Target-URI") or "").strip().strip("<>")


def _looks_html(data: bytes) -> bool:
    head = data[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _read_payload(record, cap: int) -> Optional[bytes]:
    """Up to ``cap`` + 1 payload bytes (transfer and content encodings undone); None if unreadable."""
    try:
        return record.content_stream().read(cap + 1)
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        log.debug("unreadable payload of %s: %s", _target_uri(record), exc)
        return None


def _http_info(record) -> tuple[int, str, str]:
    """(status, full Content-Type, X-Robots-Tag) of a response; resource records are 200."""
    if record.http_headers is None:
        return 200, record.content_type or "", ""
    try:
        status = int(record.http_headers.get_statuscode() or 0)
    except ValueError:
        status = 0
    headers = record.http_headers
    return status, headers.get_header("Content-Type") or "", headers.get_header("X-Robots-Tag") or ""


def _image_outputs(record, uri: str, data: bytes, mime: str, status: int, noai: str, limits: WarcLimits):
    if record.rec_headers.get_header("WARC-Truncated"):
        yield "image_truncated", None
    elif len(data) > limits.max_image_bytes:
        yield "image_too_large", None
    elif limits.respect_noai and noai_directive(noai):
        yield "image_noai", None
    else:
        date = record.rec_headers.get_header("WARC-Date") or ""
        yield "image", ArchivedImage(normalize_url(uri), data, mime, date, status)


def _response_outputs(record, uri: str, limits: WarcLimits):
    status, content_type, noai = _http_info(record)
    mime = content_type.split(";")[0].strip().lower()
    htmlish = mime in HTML_TYPES or not mime
    if not 200 <= status < 300:
        yield "http_error", PageFailure(uri, DropReason.WARC_HTTP_STATUS, f"HTTP {status}") if htmlish else None
        return
    data = _read_payload(record, max(limits.max_page_bytes, limits.max_image_bytes))
    if data is None:
        yield "unreadable", PageFailure(uri, DropReason.WARC_UNREADABLE, "payload does not decode")
        return
    image_mime = sniff_image_type(data)
    if image_mime:
        yield from _image_outputs(record, uri, data, image_mime, status, noai, limits)
    elif mime in HTML_TYPES or (mime in ("", "text/plain", "application/octet-stream") and _looks_html(data)):
        if len(data) > limits.max_page_bytes:
            yield "html_too_large", PageFailure(uri, DropReason.CRAWL_TOO_LARGE, f"over {limits.max_page_bytes} bytes")
            return
        kind = "html_truncated" if record.rec_headers.get_header("WARC-Truncated") else "html"
        yield kind, Page(url=normalize_url(uri), html=data, depth=0, content_type=content_type, status=status)
    else:
        yield "other", None


def _wat_outputs(record, uri: str, limits: WarcLimits, spec: ExtractSpec):
    data = _read_payload(record, limits.max_page_bytes)
    found = parse_wat_payload(data) if data is not None and len(data) <= limits.max_page_bytes else None
    if found is None:
        yield "metadata", None
        return
    pairs, rejected = wat_pairs(found[0], found[1], spec)
    yield "wat", None
    for out in (*pairs, *rejected):
        yield None, out


def record_outputs(record, limits: WarcLimits, spec: ExtractSpec):
    """(tally kind or None, record or None) for one WARC record."""
    uri = _target_uri(record)
    rec_type = record.rec_type
    if rec_type == "revisit":
        _, content_type, _ = _http_info(record)
        is_image = content_type.lower().startswith("image/")
        yield "revisit", None if is_image else PageFailure(uri, DropReason.WARC_REVISIT, (
            record.rec_headers.get_header("WARC-Refers-To-Target-URI") or "")[:300])
    elif rec_type in ("response", "resource") and uri.lower().startswith(("http:", "https:")):
        yield from _response_outputs(record, uri, limits)
    elif rec_type == "metadata" and (record.content_type or "").startswith("application/json"):
        yield from _wat_outputs(record, uri, limits, spec)
    else:
        yield rec_type or "unknown", None


def read_warc(fileobj, path: str, limits: WarcLimits, spec: ExtractSpec = ExtractSpec()) -> Iterator[tuple]:
    """(tally kind or None, output or None) for every record of one archive file."""
    iterator = ArchiveIterator(fileobj)
    records = iter(iterator)
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except _UNREADABLE as exc:  # framing lost: nothing after this point can be trusted
            detail = f"offset {iterator.offset}: {str(exc)[:200]!r}"
            log.warning("%s: unreadable at %s; skipping the rest of the file", path, detail)
            yield "unreadable", PageFailure(path, DropReason.WARC_UNREADABLE, detail)
            return
        yield from record_outputs(record, limits, spec)


class _ReadWarcFn(beam.DoFn):
    def __init__(self, limits: WarcLimits, spec: ExtractSpec):
        self.limits, self.spec = limits, spec

    def process(self, path: str):
        tally: dict = {}
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            for kind, out in read_warc(fh, path, self.limits, self.spec):
                if kind is not None:
                    tally[kind] = tally.get(kind, 0) + 1
                if out is not None:
                    yield _route(out)
        for kind, n in sorted(tally.items()):
            yield beam.pvalue.TaggedOutput("tally", (kind, n))


def _route(out):
    if isinstance(out, Page):
        metrics.inc(metrics.Counter.PAGES_FETCHED)
        return out
    if isinstance(out, PageFailure):
        metrics.inc_reason(out.reason)
        return beam.pvalue.TaggedOutput("failures", out)
    if isinstance(out, ArchivedImage):
        return beam.pvalue.TaggedOutput("images", out)
    metrics.inc(metrics.Counter.PAIRS_EXTRACTED)
    if isinstance(out, Rejection):
        metrics.inc_reason(DropReason(out.reason))
        return beam.pvalue.TaggedOutput("rejected", out)
    return beam.pvalue.TaggedOutput("pairs", out)


class ReadWarc(beam.PTransform):
    """Path/glob of WARC/WAT files -> {pages, images, pairs, rejected, failures, stats}."""

    def __init__(self, pattern: str, limits: WarcLimits = WarcLimits(), spec: Optional[ExtractSpec] = None):
        super().__init__()
        self.paths = expand_warc_paths(pattern)
        self.limits, self.spec = limits, spec or ExtractSpec()

    def expand(self, pbegin):
        out = (pbegin
               | "WarcFiles" >> beam.Create(self.paths)
               | "ReshuffleWarcFiles" >> beam.Reshuffle()
               | "ReadRecords" >> beam.ParDo(_ReadWarcFn(self.limits, self.spec)).with_outputs(
                   "failures", "images", "pairs", "rejected", "tally", main="pages"))
        stats = (out.tally
                 | "SumTally" >> beam.CombinePerKey(sum)
                 | "TallyDict" >> beam.combiners.ToDict()
                 | "TallyValue" >> beam.Map(lambda d: ("warc", "records", dict(sorted(d.items())))))
        return {"pages": out.pages, "images": out.images, "pairs": out.pairs, "rejected": out.rejected,
                "failures": out.failures, "stats": stats}


def warc_limits(crawl_cfg, fetch_cfg) -> WarcLimits:
    return WarcLimits(crawl_cfg.max_page_bytes, fetch_cfg.max_bytes, fetch_cfg.respect_noai)


# ---- UseArchivedImages ------------------------------------------------------------


class _RouteFn(beam.DoFn):
    def process(self, url_and_joined):
        url, joined = url_and_joined
        images = sorted(joined["images"], key=lambda i: (i.date, i.status, len(i.data)))
        for pair in joined["pairs"]:
            if not images:
                yield beam.pvalue.TaggedOutput("download", pair)
                continue
            best = images[-1]
            yield FetchedImage(pair=pair, data=best.data, final_url=best.url, mime=best.mime, status=best.status)


def _image_key(pair: AltPair) -> str:
    return normalize_url(pair.image_url)


class UseArchivedImages(beam.PTransform):
    """(pairs, archived images) -> {archived: FetchedImage, download: AltPair, stats}."""

    def expand(self, pairs_and_images):
        pairs, images = pairs_and_images
        joined = ({"pairs": pairs | "KeyPairsByImageUrl" >> beam.Map(lambda p: (_image_key(p), p)),
                   "images": images | "KeyImagesByUrl" >> beam.Map(lambda i: (i.url, i))}
                  | "JoinOnImageUrl" >> beam.CoGroupByKey()
                  | "Route" >> beam.ParDo(_RouteFn()).with_outputs("download", main="archived"))
        used = (joined.archived
                | "CountArchiveUses" >> beam.combiners.Count.Globally()
                | "ArchiveUsesValue" >> beam.Map(lambda n: ("warc", "pairs_with_archived_image", n)))
        return {"archived": joined.archived, "download": joined.download, "stats": used}
