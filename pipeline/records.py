"""Record types that cross pipeline stages, and the closed set of drop reasons.

Input: nothing (type definitions only). Output: immutable records.
Every stage emits its own record type that carries the previous one, so a sample
that reaches the shard writer still knows the page, the alt text and the fetch
that produced it. Drop reasons are a closed enum of ``"<stage>.<reason>"``
strings; metric names and parquet values use them, free text goes in ``detail``.
"""

from __future__ import annotations

import enum
import hashlib
import operator
from dataclasses import dataclass, fields
from typing import Optional

DETAIL_MAX_CHARS = 300


class DropReason(str, enum.Enum):
    """Why a pair was dropped. The prefix before the dot is the stage."""

    # page crawl (pages are not pairs; these go to the page funnel in stats.json)
    CRAWL_HTTP_4XX = "crawl.http_4xx"
    CRAWL_HTTP_5XX = "crawl.http_5xx"
    CRAWL_NOT_HTML = "crawl.not_html"
    CRAWL_ROBOTS = "crawl.robots_disallowed"
    CRAWL_ERROR = "crawl.error"
    CRAWL_PRIVATE = "crawl.private_address"
    CRAWL_TOO_LARGE = "crawl.too_large"
    CRAWL_DUPLICATE_PAGE = "crawl.duplicate_page"  # rel=canonical already crawled, or the same bytes
    CRAWL_ROBOTS_UNAVAILABLE = "crawl.robots_unavailable"  # robots.txt 5xx/unreachable: RFC 9309 complete disallow
    CRAWL_HOST_TOO_SLOW = "crawl.host_too_slow"  # Crawl-delay / Retry-After above fetch.max_host_delay_s
    CRAWL_NOAI = "crawl.noai"  # X-Robots-Tag noai/noimageai (for us) on the page's response: its pairs are not used
    CRAWL_TDM_RESERVED = "crawl.tdm_reserved"  # TDMRep reservation for the page (header or tdmrep.json)
    CRAWL_BAD_URL = "crawl.bad_url"
    CRAWL_INTERNAL = "crawl.internal_error"  # an unexpected exception on one page (type, message, where)
    # web archive records that give no page (page funnel too; transforms/warc.py)
    WARC_REVISIT = "warc.revisit"  # a revisit record of a page: no payload, captured earlier
    WARC_HTTP_STATUS = "warc.http_status"  # a non-2xx captured HTML response
    WARC_UNREADABLE = "warc.unreadable"  # a record warcio cannot parse (reading resumes at the next clean one)
    WARC_INTERNAL = "warc.internal_error"  # an unexpected exception on one record
    # extraction
    EXTRACT_DATA_URI = "extract.data_uri"
    EXTRACT_BAD_URL = "extract.bad_url"
    EXTRACT_TRACKER = "extract.tracker"  # declared 1x1 (or smaller) or a known tracking-pixel URL
    EXTRACT_BAD_ENCODING = "extract.bad_encoding"  # a list row whose URL is not valid text in the file's encoding
    EXTRACT_PAGE_NOAI = "extract.page_noai"  # <meta name=robots content=noai|noimageai> on the page
    EXTRACT_TDM_RESERVED = "extract.tdm_reserved"  # <meta name=tdm-reservation content=1> (TDMRep) on the page
    EXTRACT_INTERNAL = "extract.internal_error"  # an unexpected exception on one page or list row
    EXTRACT_BAD_ROW = "extract.bad_row"  # a URL-list row that is no record (JSON null/number, malformed JSONL or CSV line)
    EXTRACT_UNREADABLE_FILE = "extract.unreadable_file"  # a URL-list file unreadable as its format: one per file
    # caption rules
    CAPTION_EMPTY = "caption.empty"
    CAPTION_FILENAME = "caption.filename"
    CAPTION_URL = "caption.url_like"
    CAPTION_PLACEHOLDER = "caption.placeholder"
    CAPTION_NAVIGATION = "caption.navigation"
    CAPTION_TOO_SHORT = "caption.too_short"
    CAPTION_TOO_LONG = "caption.too_long"
    CAPTION_LANGUAGE = "caption.language"  # confidently identified as a language not configured
    CAPTION_BOILERPLATE = "caption.boilerplate"  # the same alt on more than N distinct images of a site
    CAPTION_BADGE = "caption.badge"  # "Powered by MediaWiki", "Creative Commons License" (caption.badges)
    CAPTION_REPETITIVE = "caption.repetitive"  # one word or phrase over and over ("spam spam spam spam")
    CAPTION_INTERNAL = "caption.internal_error"  # a caption rule raised on one pair (filters/base.py)
    # metadata balancing (transforms/balance.py, MetaCLIP)
    BALANCE_NO_MATCH = "balance.no_match"  # the caption matches no metadata entry
    BALANCE_DOWNSAMPLED = "balance.downsampled"  # all its entries are over t and the draw said drop
    BALANCE_INTERNAL = "balance.internal_error"
    # url dedupe
    DEDUPE_URL = "dedupe.url"
    DEDUPE_URL_CAPTION = "dedupe.url_caption"  # the same (image URL, caption) pair again
    # image fetch
    FETCH_TIMEOUT = "fetch.timeout"
    FETCH_CONNECT = "fetch.connect"
    FETCH_DNS = "fetch.dns"
    FETCH_HTTP_4XX = "fetch.http_4xx"
    FETCH_HTTP_5XX = "fetch.http_5xx"
    FETCH_TOO_LARGE = "fetch.too_large"
    FETCH_NOT_IMAGE = "fetch.not_image"
    FETCH_ROBOTS = "fetch.robots_disallowed"
    FETCH_NOAI = "fetch.noai"
    FETCH_PRIVATE = "fetch.private_address"
    FETCH_REDIRECT_LOOP = "fetch.redirect_loop"
    FETCH_TOO_MANY_REDIRECTS = "fetch.too_many_redirects"
    FETCH_TLS = "fetch.tls"
    FETCH_BAD_RESPONSE = "fetch.bad_response"
    FETCH_INCOMPLETE = "fetch.incomplete_body"
    FETCH_UNSUPPORTED = "fetch.unsupported_format"
    FETCH_BAD_URL = "fetch.bad_url"
    FETCH_ERROR = "fetch.error"
    FETCH_ROBOTS_UNAVAILABLE = "fetch.robots_unavailable"  # robots.txt 5xx/unreachable: RFC 9309 complete disallow
    FETCH_HOST_TOO_SLOW = "fetch.host_too_slow"  # Crawl-delay / Retry-After above fetch.max_host_delay_s
    FETCH_TDM_RESERVED = "fetch.tdm_reserved"  # TDMRep: tdm-reservation: 1 header or the origin's tdmrep.json
    FETCH_SVG_DISABLED = "fetch.svg_disabled"  # Content-Type image/svg+xml with resize.svg off: body not read
    FETCH_INTERNAL = "fetch.internal_error"  # an unexpected exception on one download
    # decode / resize and image rules
    IMAGE_UNDECODABLE = "image.undecodable"
    IMAGE_TOO_MANY_PIXELS = "image.too_many_pixels"
    IMAGE_SVG_REFUSED = "image.svg_refused"  # an SVG not rendered for safety: entities, size, time (transforms/svg.py)
    IMAGE_TOO_SMALL = "image.too_small"
    IMAGE_BAD_ASPECT = "image.bad_aspect"
    IMAGE_INTERNAL = "image.internal_error"  # an unexpected exception decoding/resizing one image
    # licence (filters/license_rules.py): the sample's licence is not in license.allow
    LICENSE_NOT_ALLOWED = "license.not_allowed"
    LICENSE_INTERNAL = "license.internal_error"  # a licence rule raised on one pair (filters/base.py)
    # image dedupe
    DEDUPE_IMAGE_EXACT = "dedupe.image_exact"
    DEDUPE_IMAGE_NEAR = "dedupe.image_near"
    DEDUPE_SEMANTIC = "dedupe.semantic"  # CLIP image embeddings within 1 - eps (SemDeDup)
    # CLIP scoring
    CLIP_BELOW_THRESHOLD = "clip.below_threshold"
    CLIP_SCORE_ERROR = "clip.score_error"
    CLIP_INTERNAL = "clip.internal_error"  # a CLIP threshold rule raised on one record (filters/base.py)
    # curator's blocklists (filters/blocklist.py): before download, then on the downloaded image
    BLOCKLIST_DOMAIN = "blocklist.domain"  # image host is a listed domain or under one
    BLOCKLIST_PAGE_DOMAIN = "blocklist.page_domain"  # the page's host is
    BLOCKLIST_URL_PREFIX = "blocklist.url_prefix"
    BLOCKLIST_URL = "blocklist.url"
    BLOCKLIST_SHA256 = "blocklist.sha256"
    BLOCKLIST_PHASH = "blocklist.phash"  # within the configured Hamming radius of a listed pHash
    # safety tags from the CLIP embeddings (filters/safety.py); a tag not named here is safety.custom
    SAFETY_NSFW = "safety.nsfw"
    SAFETY_WATERMARK = "safety.watermark"
    SAFETY_SCREENSHOT = "safety.screenshot"
    SAFETY_CUSTOM = "safety.custom"
    SAFETY_INTERNAL = "safety.internal_error"  # a safety rule raised on one record (filters/base.py)
    # a rule of a stage with no internal_error code of its own raised on one record (filters/base.py)
    FILTER_INTERNAL = "filter.internal_error"

    @property
    def stage(self) -> str:
        return self.value.split(".", 1)[0]

    def __str__(self) -> str:  # logs and f-strings show the code, not the member name
        return self.value


def record(cls):
    """A frozen, slotted dataclass that pickles as ``(class, field values)``.

    Records are pickled at every shuffle and fused-stage boundary. The
    ``__getstate__`` a slotted dataclass gets walks ``fields()`` on every call;
    this positional ``__reduce__`` halves the round trip (55 -> 29 us for a
    ResizedImage). Pickles written with the default state still load.
    """
    cls = dataclass(frozen=True, slots=True)(cls)
    names = tuple(f.name for f in fields(cls))
    if names != cls.__match_args__:
        raise TypeError(f"{cls.__name__}: every field must be an __init__ argument, in order")
    values = operator.attrgetter(*names) if len(names) > 1 else (lambda r: (getattr(r, names[0]),))

    def __reduce__(self):
        return type(self), values(self)

    cls.__reduce__ = __reduce__
    return cls


def make_key(page_url: str, index: int) -> str:
    """Stable sample key: the page URL and the ``<img>``'s position on it.

    Hex only (webdataset splits member names on the first dot), and the same
    input always gives the same key, so reruns write identical shards.
    """
    digest = hashlib.sha1(f"{page_url}\n{index}".encode("utf-8")).hexdigest()
    return digest[:20]


@record
class Page:
    """A fetched HTML page (FetchPages output)."""

    url: str
    html: bytes
    depth: int
    content_type: str = ""
    status: int = 200


@record
class PageFailure:
    """A page that could not be crawled (counted in the page funnel, not a pair)."""

    url: str
    reason: DropReason
    detail: str = ""


@record
class AltPair:
    """One ``<img>`` with its alt text and context (ExtractAltText output)."""

    key: str
    page_url: str
    image_url: str
    caption: str
    position: int = 0  # index of the <img> on its page
    page_title: str = ""
    title: str = ""
    figcaption: str = ""
    heading: str = ""
    lang: str = ""
    declared_width: Optional[int] = None
    declared_height: Optional[int] = None
    extra: tuple = ()  # ((name, value), ...) carried into metadata
    # SPDX-style licence id the page declares for the image (transforms/license.py): "cc-by-4.0",
    # "other", "unknown"; "" = not captured (URL lists, WAT), which means unknown too
    license: str = ""
    uid: str = ""  # an input row's own id (DataComp's 32-hex uid); "" = none given


@record
class FetchedImage:
    """Downloaded image bytes for a pair (FetchImages output)."""

    pair: AltPair
    data: bytes
    final_url: str
    mime: str
    status: int = 200


@record
class BlobRef:
    """Where an image's encoded bytes sit: ``length`` bytes at ``offset`` of the file ``path``."""

    path: str
    offset: int
    length: int


@record
class ResizedImage:
    """A decoded, resized and re-encoded image (ResizeImages output).

    ``data`` holds the encoded output image; the original bytes are dropped here
    so they do not travel further through the pipeline. After SpillImages
    (transforms/image_store.py) ``data`` is empty and ``blob`` says where the bytes
    are: read them with ``image_store.image_bytes``.
    """

    pair: AltPair
    data: bytes
    ext: str  # "jpg", "webp" or "png": the tar member extension
    width: int
    height: int
    original_width: int
    original_height: int
    sha256: str  # of the downloaded (original) bytes, as img2dataset
    final_url: str = ""
    mime: str = ""
    phash: str = ""  # 64-bit DCT perceptual hash, 16 hex digits (transforms/hashing.py); "" = not hashed
    colour_sig: str = ""  # mean YCbCr of the 4 quarters, 24 hex digits (transforms/hashing.py); not written
    blob: Optional[BlobRef] = None  # set when ``data`` was spilled to a file
    exif: str = ""  # the original's EXIF as img2dataset writes it (JSON object text); "" = none


@record
class ScoredImage:
    """A resized image with its CLIP image-text similarity (ScoreClip output)."""

    image: ResizedImage
    clip_score: Optional[float] = None
    clip_model: str = ""
    # L2-normalised CLIP embeddings as raw little-endian float16 bytes (transforms/embeddings.py);
    # b"" when unscored. Written to OUT/embeddings/, never to the shards.
    image_embedding: bytes = b""
    text_embedding: bytes = b""
    # ((tag, score in [0, 1]), ...) from TagSafety (transforms/safety_tags.py); () = not tagged.
    # Written as safety_<tag> columns.
    safety: tuple = ()


@record
class Rejection:
    """The one shape of a dropped pair, whatever stage dropped it."""

    key: str
    stage: str
    reason: str
    detail: str = ""
    page_url: str = ""
    image_url: str = ""
    caption: str = ""
    # A small JPEG of the dropped image (transforms/reject_thumbnails.py), for pairs dropped after
    # download with output.reject_thumbnails; None for the rest. Set only by AttachThumbnails.
    thumbnail: Optional[bytes] = None

    @classmethod
    def of(cls, pair: AltPair, reason: DropReason, detail: str = "") -> "Rejection":
        return cls(
            key=pair.key,
            stage=reason.stage,
            reason=reason.value,
            detail=(detail or "")[:DETAIL_MAX_CHARS],
            page_url=pair.page_url,
            image_url=pair.image_url,
            caption=pair.caption,
        )


def pair_of(record) -> AltPair:
    """The AltPair inside any stage record."""
    if isinstance(record, AltPair):
        return record
    if isinstance(record, ScoredImage):
        return record.image.pair
    return record.pair


__all__ = [
    "AltPair",
    "BlobRef",
    "DETAIL_MAX_CHARS",
    "DropReason",
    "FetchedImage",
    "Page",
    "PageFailure",
    "Rejection",
    "ResizedImage",
    "ScoredImage",
    "make_key",
    "pair_of",
]
