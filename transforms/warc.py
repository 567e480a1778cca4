"""ReadWarc and UseArchivedImages: web archives (WARC, ARC, gzipped or not; Common Crawl WAT) as input.

Input: a path or glob (local or any Beam filesystem) of WARC or ARC files, plain or
gzipped (per record, or as one whole-file gzip stream); no name filter: the format is
read from the bytes (transforms/warc_reader.py). Output of ReadWarc, a dict of
PCollections (what each record gives: transforms/warc_records.py):

- ``pages``: ``Page`` for each 2xx HTML response or resource record, for ExtractAltText.
- ``images``: ``ArchivedImage`` for each 2xx image capture — with its bytes, or with the
  ``fetch.*`` reason its pairs are rejected with (``fetch.noai``, ``fetch.too_large``,
  ``fetch.incomplete_body``, ``fetch.unsupported_format``, ``fetch.not_image``,
  ``fetch.bad_response``): an image the archive holds is never requested live.
- ``pairs`` / ``rejected``: pairs from WAT metadata records (transforms/wat.py).
- ``failures``: page-funnel ``PageFailure``: ``warc.revisit``, ``warc.http_status``,
  ``crawl.too_large`` (per record); ``warc.unreadable`` (a record warcio cannot parse, a
  gzip member that stops decoding, a file that ends inside a record or cannot be
  opened: the detail names the file, the byte offset, the error and where reading
  resumed); ``warc.internal_error`` (an unexpected exception on one record: that record
  only, reading goes on; or on a file: that file only).
- ``stats``: ``("warc", "records", {kind: n})`` — every record read, by kind — and
  ``("warc", "warnings", {kind: n})``: warcio's warnings, counted instead of printed
  (transforms/warc_warnings.py).

Nothing in an archive is fatal: each record is one tally kind.

UseArchivedImages joins pairs with archived images on the normalised image URL: a pair
whose image the archive holds becomes a ``FetchedImage`` with those bytes (for
ResizeImages), or a ``Rejection`` with the capture's reason — no request either way —
and the others go on to FetchImages. Of several captures of one URL the latest
(WARC-Date) is used, but a usable capture (or a noai one: the opt-out stands) comes
before a broken one; ties are broken on the bytes, so the choice is deterministic.
Output: ``{archived, rejected, download, stats}``; stats ``("warc",
"pairs_with_archived_image", n)`` and ``("warc", "pairs_rejected_from_archive", n)``.

Keys at 100M pairs: the tallies are ``CombinePerKey(sum)`` over a dozen record kinds (lifted)
and ``ToDict`` of those dozen; the counts are ``Count.Globally``. ``LatestCapture`` combines
the captures of one URL (lifted: one capture per worker bundle reaches the shuffle).
``JoinOnImageUrl``'s largest key is the pairs of one image URL plus its best capture; it runs
after DedupeUrls (build.py), which leaves one pair per URL, so a key is one pair and one
capture (the capture's bytes, up to ``fetch.max_bytes``). With ``dedupe.url: false`` it is the
(URL, caption) variants of the most shared image.
"""

from __future__ import annotations

import collections
import logging
import re
from typing import Iterator, Optional

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from pipeline import faults, metrics
from pipeline.records import DETAIL_MAX_CHARS, AltPair, DropReason, FetchedImage, Page, PageFailure, Rejection
from transforms.crawl import normalize_url
from transforms.extract_alt_text import ExtractSpec
from transforms.warc_reader import file_name, is_arc, read_warc
from transforms.warc_records import ArchivedImage, WarcLimits

log = logging.getLogger(__name__)

__all__ = ["ArchivedImage", "ReadWarc", "UseArchivedImages", "WarcInputError", "WarcLimits", "best_capture",
           "expand_warc_paths", "is_arc", "read_file", "read_warc"]


class WarcInputError(ValueError):
    """No file matches the --warc path or glob (a clear error before anything runs)."""


def expand_warc_paths(pattern: str) -> list[str]:
    """Files matching a path or glob, sorted (WarcInputError when none). No name filter:
    WARC, ARC, gzipped or not, WAT — the format is read from the bytes."""
    paths = sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)
    if not paths:
        raise WarcInputError(f"no WARC file matches {pattern!r}")
    return paths


def read_file(path: str, limits: WarcLimits, spec: ExtractSpec, warnings: collections.Counter) -> Iterator[tuple]:
    """read_warc over one file of any Beam filesystem; a file that cannot be opened is one failure."""
    try:
        fh = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as exc:  # noqa: BLE001 — a vanished or unreadable file costs that file only
        if isinstance(exc, OSError):
            kind, reason, why = "unreadable", DropReason.WARC_UNREADABLE, faults.describe(exc)
        else:
            kind, reason = "internal_error", DropReason.WARC_INTERNAL
            why = faults.internal_error(reason, exc, path)
        yield kind, PageFailure(path, reason, f"{file_name(path)}: cannot open: {why}"[:DETAIL_MAX_CHARS])
        return
    with fh:
        yield from read_warc(fh, path, limits, spec, warnings)


class _ReadWarcFn(beam.DoFn):
    def __init__(self, limits: WarcLimits, spec: ExtractSpec):
        self.limits, self.spec = limits, spec

    def process(self, path: str):
        tally, warnings = collections.Counter(), collections.Counter()
        for kind, out in read_file(path, self.limits, self.spec, warnings):
            if kind is not None:
                tally[kind] += 1
            if out is not None:
                yield _route(out)
        for kind, n in sorted(tally.items()):
            yield beam.pvalue.TaggedOutput("tally", (kind, n))
        if warnings:  # one line a file, not one a record (warcio's own habit)
            log.info("%s: warcio warnings %s", path, dict(sorted(warnings.items())))
        for kind, n in sorted(warnings.items()):
            yield beam.pvalue.TaggedOutput("warnings", (kind, n))


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


def _sum_as_dict(pcoll, label: str, name: str):
    return (pcoll
            | f"Sum{label}" >> beam.CombinePerKey(sum)
            | f"{label}Dict" >> beam.combiners.ToDict()
            | f"{label}Value" >> beam.Map(lambda d, n=name: ("warc", n, dict(sorted(d.items())))))


class ReadWarc(beam.PTransform):
    """Path/glob of WARC/ARC/WAT files -> {pages, images, pairs, rejected, failures, stats}."""

    def __init__(self, pattern: str, limits: WarcLimits, spec: ExtractSpec):
        super().__init__()
        self.paths = expand_warc_paths(pattern)
        self.limits, self.spec = limits, spec

    def expand(self, pbegin):
        out = (pbegin
               | "WarcFiles" >> beam.Create(self.paths)
               | "ReshuffleWarcFiles" >> beam.Reshuffle()
               | "ReadRecords" >> beam.ParDo(_ReadWarcFn(self.limits, self.spec)).with_outputs(
                   "failures", "images", "pairs", "rejected", "tally", "warnings", main="pages"))
        stats = ((_sum_as_dict(out.tally, "Tally", "records"), _sum_as_dict(out.warnings, "Warnings", "warnings"))
                 | "WarcStats" >> beam.Flatten())
        return {"pages": out.pages, "images": out.images, "pairs": out.pairs, "rejected": out.rejected,
                "failures": out.failures, "stats": stats}


# ---- UseArchivedImages ------------------------------------------------------------

_ISO_DATE = re.compile(r"([0-9]{4}(?:-[0-9]{2}(?:-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}(?::[0-9]{2})?)?)?)?)"
                       r"(?:\.([0-9]{1,9}))?Z?")


def _date_key(date: str) -> tuple:
    """WARC-Date as a sortable key: "…:10.5Z" after "…:10Z" (as strings it sorts before); unparsable first."""
    m = _ISO_DATE.fullmatch(date.strip())
    return (1, m[1], (m[2] or "").ljust(9, "0")) if m else (0, date, "")


def _capture_rank(image: ArchivedImage) -> tuple:
    decisive = not image.reason or image.reason == DropReason.FETCH_NOAI.value
    return (decisive, _date_key(image.date), image.status, len(image.data), image.reason, image.detail, image.data)


def best_capture(captures) -> Optional[ArchivedImage]:
    """The capture of one URL its pairs get: the latest usable (or noai) one, else the latest broken one.
    A total order, so every worker and rerun picks the same (and it combines: max is associative)."""
    return max(captures, key=_capture_rank, default=None)


def archived_outcome(pair: AltPair, image: ArchivedImage):
    """A pair's outcome from the archive's capture of its image: the bytes, or the capture's rejection."""
    if image.reason:
        return Rejection.of(pair, DropReason(image.reason), image.detail)
    return FetchedImage(pair=pair, data=image.data, final_url=image.url, mime=image.mime, status=image.status)


class _RouteFn(beam.DoFn):
    def process(self, url_and_joined):
        _, joined = url_and_joined
        best = best_capture(joined["images"])
        for pair in joined["pairs"]:
            if best is None:
                yield beam.pvalue.TaggedOutput("download", pair)
                continue
            out = archived_outcome(pair, best)
            if isinstance(out, Rejection):
                metrics.inc_reason(DropReason(out.reason))
                yield beam.pvalue.TaggedOutput("rejected", out)
            else:
                yield out


def _image_key(pair: AltPair) -> str:
    return normalize_url(pair.image_url)  # never raises: a URL that does not parse is kept as written


def _count(pcoll, label: str, name: str):
    return (pcoll | f"Count{label}" >> beam.combiners.Count.Globally()
            | f"{label}Value" >> beam.Map(lambda n, s=name: ("warc", s, n)))


class UseArchivedImages(beam.PTransform):
    """(pairs, archived images) -> {archived: FetchedImage, rejected: Rejection, download: AltPair, stats}."""

    def expand(self, pairs_and_images):
        pairs, images = pairs_and_images
        joined = ({"pairs": pairs | "KeyPairsByImageUrl" >> beam.Map(lambda p: (_image_key(p), p)),
                   "images": (images | "KeyImagesByUrl" >> beam.Map(lambda i: (i.url, i))
                              | "LatestCapture" >> beam.CombinePerKey(best_capture))}
                  | "JoinOnImageUrl" >> beam.CoGroupByKey()
                  | "Route" >> beam.ParDo(_RouteFn()).with_outputs("download", "rejected", main="archived"))
        stats = ((_count(joined.archived, "ArchiveUses", "pairs_with_archived_image"),
                  _count(joined.rejected, "ArchiveRefusals", "pairs_rejected_from_archive"))
                 | "ArchiveStats" >> beam.Flatten())
        return {"archived": joined.archived, "rejected": joined.rejected, "download": joined.download,
                "stats": stats}
