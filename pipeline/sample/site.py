"""The deterministic offline "sample web": HTML pages, images and the expected outcome of every pair.

Input: a seed and a page count. Output: a ``SampleSite`` holding every HTTP resource
(path -> status, headers, body), ``robots.txt``, the seed paths and a manifest with one
``ManifestEntry`` per ``<img>`` on every page: the alt text, the case ``kind`` and the
outcome the pipeline must reach ("kept" or a ``DropReason`` value). Cases cover every
caption rule, URL and exact-image dedupe, HTTP errors, non-images, truncated JPEGs,
``X-Robots-Tag: noai``, robots.txt, redirects, tiny/banner images, near-duplicates
(all but the group's original are ``dedupe.image_near``) and mismatched captions
(``clip.below_threshold``). The same seed gives byte-identical resources.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from PIL import Image

from pipeline.records import DropReason
from pipeline.sample import scenes
from pipeline.sample.pages import PlacedImage, render_page
from pipeline.sample.scenes import SceneSpec, caption_for, encode_jpeg, render_scene

logger = logging.getLogger(__name__)

KEPT = "kept"
JPEG, PNG = "image/jpeg", "image/png"
HTML_TYPE = "text/html; charset=utf-8"
ROBOTS_TXT = "# sample web: images under /private/ are off limits\nUser-agent: *\nDisallow: /private/\n"
_IMAGE_HEADERS = (("Cache-Control", "public, max-age=86400"),)

# (kind, expected reason, alt texts); None = the alt attribute is missing altogether.
_LONG_WORDS = "shapes art print poster circle square modern wall decor cheap buy online gift idea".split()
JUNK_CASES: tuple[tuple[str, DropReason, tuple[Optional[str], ...]], ...] = (
    ("junk_empty", DropReason.CAPTION_EMPTY, ("", None, "", None)),
    ("junk_whitespace", DropReason.CAPTION_EMPTY, ("   ", "\t \n")),
    ("junk_filename", DropReason.CAPTION_FILENAME, ("IMG_0042.JPG", "DSC01234.jpg", "image001.png")),
    ("junk_url", DropReason.CAPTION_URL, ("https://example.com/item?id=3", "www.example.org/gallery")),
    ("junk_placeholder", DropReason.CAPTION_PLACEHOLDER, ("logo", "click here", "image", "photo")),
    ("junk_navigation", DropReason.CAPTION_NAVIGATION, ("next", "prev", "\u00ab", "\u2192", "home")),
    ("junk_short", DropReason.CAPTION_TOO_SHORT, ("red", "a dog", "a sky")),  # under caption.min_chars
    ("junk_long", DropReason.CAPTION_REPETITIVE, (  # keyword stuffing; length alone is no longer junk
        " ".join(itertools.islice(itertools.cycle(_LONG_WORDS), 70)),
        " ".join(itertools.islice(itertools.cycle(reversed(_LONG_WORDS)), 90)),
    )),
)
KINDS: tuple[str, ...] = ("matched", "mismatched") + tuple(k for k, _, _ in JUNK_CASES) + (
    "same_image_two_urls", "url_repeat", "near_duplicate", "tiny_icon", "banner", "http_404",
    "http_500", "not_image", "truncated_jpeg", "noai", "robots_disallowed", "redirect",
)


@dataclass(frozen=True)
class Resource:
    """One HTTP response: status, headers (name, value) and body. Content-Length is the server's job."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (case-insensitive)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default


@dataclass(frozen=True)
class ManifestEntry:
    """One ``<img>`` on one page and the outcome the pipeline must reach for it."""

    page_path: str
    image_path: str  # the src attribute exactly as written (absolute path)
    alt: str  # a missing alt attribute is recorded as ""
    kind: str
    expected: str  # "kept" or a DropReason value
    note: str = ""


@dataclass(frozen=True)
class SampleSite:
    """An in-memory website plus the expected outcome of each of its (page, image) pairs."""

    resources: dict[str, Resource]
    manifest: list[ManifestEntry]
    seed_paths: list[str]
    robots_txt: str
    page_paths: tuple[str, ...] = ()
    seed: int = 0

    def manifest_json(self) -> str:
        """The manifest (and seed paths) as stable, sorted JSON."""
        doc = {
            "seed": self.seed,
            "seed_paths": list(self.seed_paths),
            "page_paths": list(self.page_paths),
            "robots_txt": self.robots_txt,
            "entries": [asdict(e) for e in self.manifest],
        }
        return json.dumps(doc, indent=1, sort_keys=True)


def manifest_by_pair(site: SampleSite) -> dict[tuple[str, str], ManifestEntry]:
    """Manifest entries keyed by (page_path, image_path)."""
    return {(e.page_path, e.image_path): e for e in site.manifest}


class _Builder:
    """Accumulates resources and placed images; every random choice comes from one rng."""

    def __init__(self, seed: int, n_pages: int):
        self.rng = random.Random(seed)
        self.pages = ["/index.html"] + [f"/pages/p{i:02d}.html" for i in range(n_pages)]
        self.placed: dict[str, list[PlacedImage]] = {p: [] for p in self.pages}
        self.resources: dict[str, Resource] = {}
        specs = scenes.all_specs()
        self.rng.shuffle(specs)  # distinct specs first: fewer accidental look-alikes
        self._specs = itertools.cycle(specs)

    def spec(self, count: Optional[int] = None) -> SceneSpec:
        spec = next(self._specs)
        return spec if count is None else SceneSpec(spec.shape, spec.colour, spec.background, count)

    def size(self) -> tuple[int, int]:
        """A normal scene size: 160-320 px a side, aspect within 0.75-1.33."""
        while True:
            w, h = self.rng.randint(160, 320), self.rng.randint(160, 320)
            if 0.75 <= w / h <= 1.33:
                return w, h

    def image(self, spec: SceneSpec, size: Optional[tuple[int, int]] = None) -> Image.Image:
        return render_scene(spec, size or self.size(), seed=self.rng.randrange(2**31))

    def serve(self, path: str, body: bytes, content_type: str, status: int = 200, extra=()) -> None:
        if path in self.resources:
            raise RuntimeError(f"resource {path} defined twice")
        headers = (("Content-Type", content_type),) + tuple(extra)
        if status == 200 and content_type.startswith("image/"):
            headers += _IMAGE_HEADERS
        self.resources[path] = Resource(status, headers, body)

    def serve_scene(self, path: str, spec: SceneSpec, size=None, extra=()) -> None:
        img, png = self.image(spec, size), path.endswith(".png")
        body = scenes.encode_png(img) if png else encode_jpeg(img)
        self.serve(path, body, PNG if png else JPEG, extra=extra)

    def place(self, page: str, src: str, alt: Optional[str], kind: str, expected, **kw) -> None:
        """Put an ``<img>`` on ``page``; ``kw``: note, figure, link."""
        entry = ManifestEntry(
            page_path=page, image_path=src, alt=alt or "", kind=kind, expected=str(expected), note=kw.get("note", ""),
        )
        figure = kw.get("figure", False)
        caption = f"Plate {self.rng.randint(1, 400)} from the shapes collection." if figure else ""
        self.placed[page].append(PlacedImage(entry, alt, caption, kw.get("link", "")))

    def any_page(self) -> str:
        return self.rng.choice(self.pages)

    def caption(self, spec: SceneSpec) -> str:
        return caption_for(spec, self.rng)


def _add_regular(b: _Builder, mismatched_share: Optional[float] = None) -> None:
    """Matched (kept) and mismatched (clip.below_threshold) scenes, spread over every page.

    ``mismatched_share``: the fraction of these pairs whose alt text describes another
    image (default: about 1 in 6, enough to test the threshold; the web's own alt text
    is far noisier, which is what bench/ab_filtering.py sets this for).
    """
    n = 0
    for i, page in enumerate(b.pages):
        n_matched, n_mismatched = 6 + i % 3, 1 + (i % 3 == 0)
        if mismatched_share is not None:
            n_mismatched = round(n_matched * mismatched_share / (1.0 - mismatched_share))
        for j in range(n_matched + n_mismatched):
            n += 1
            src = f"/img/scene_{n:04d}.png" if n % 9 == 0 else f"/img/scene_{n:04d}.jpg"
            spec = b.spec()
            b.serve_scene(src, spec)
            figure = b.rng.random() < 0.5
            if j < n_matched:
                b.place(page, src, b.caption(spec), "matched", KEPT, figure=figure)
            else:
                wrong = scenes.mismatched_spec(spec, b.rng)
                b.place(page, src, b.caption(wrong), "mismatched", DropReason.CLIP_BELOW_THRESHOLD,
                        figure=figure, note=f"image shows {scenes.describe(spec)}")


def _add_junk(b: _Builder) -> None:
    """Pairs the caption rules drop; each image is a fine scene so only the caption is at fault."""
    for kind, reason, alts in JUNK_CASES:
        for i, alt in enumerate(alts):
            src = f"/img/misc/{kind[len('junk_'):]}_{i}.jpg"
            b.serve_scene(src, b.spec())
            page = b.any_page()
            link = ""
            if kind == "junk_navigation":  # an arrow-ish image inside a link, as on real sites
                link = "/index.html" if alt == "home" else b.pages[(b.pages.index(page) + 1) % len(b.pages)]
            note = "alt attribute missing" if alt is None else ""
            b.place(page, src, alt, kind, reason, link=link, note=note)


def _add_exact_duplicates(b: _Builder, groups: int = 5) -> None:
    """The same bytes at two paths: the smaller path is kept, the other is dedupe.image_exact."""
    for g in range(groups):
        spec = b.spec()
        body = encode_jpeg(b.image(spec))
        for letter, expected in (("A", KEPT), ("B", DropReason.DEDUPE_IMAGE_EXACT)):
            src = f"/img/dup{letter}_{g}.jpg"
            b.serve(src, body, JPEG)
            b.place(b.any_page(), src, b.caption(spec), "same_image_two_urls", expected,
                    figure=b.rng.random() < 0.5, note=f"same bytes as /img/dupA_{g}.jpg")


def _add_url_repeats(b: _Builder, groups: int = 4) -> None:
    """One image URL on several pages: the smallest page path keeps it, the rest are dedupe.url."""
    for g in range(groups):
        spec = b.spec()
        src = f"/img/shared_{g}.jpg"
        b.serve_scene(src, spec)
        n_refs = min(3 if g == 0 else 2, len(b.pages))
        for k, page in enumerate(sorted(b.rng.sample(b.pages, n_refs))):
            expected = KEPT if k == 0 else DropReason.DEDUPE_URL
            b.place(page, src, b.caption(spec), "url_repeat", expected, note=f"{src} is on {n_refs} pages")


def _add_near_duplicates(b: _Builder, groups: int = 5) -> None:
    """An original plus re-encoded, rescaled and cropped variants, each at its own path."""
    for g in range(groups):
        spec = b.spec()
        original_bytes = encode_jpeg(b.image(spec))
        decoded = Image.open(io.BytesIO(original_bytes)).convert("RGB")
        variants = (
            ("a", original_bytes, "original (group representative)"),
            ("b", encode_jpeg(decoded, quality=55), "re-encoded at JPEG quality 55"),
            ("c", encode_jpeg(scenes.rescale(decoded, 0.8)), "rescaled to 0.8x"),
            ("d", encode_jpeg(scenes.crop_fraction(decoded, 0.03, 0.02, 0.01, 0.02)), "cropped 4% a side (8% of the area)"),
        )
        for letter, body, what in variants:
            src = f"/img/near_{g}_{letter}.jpg"
            b.serve(src, body, JPEG)
            # dedupe.near_policy "largest": the original (a) and its re-encode (b) share the most
            # pixels; the tie goes to the smaller image URL, so "a" represents the group.
            expected = KEPT if letter == "a" else DropReason.DEDUPE_IMAGE_NEAR
            b.place(b.any_page(), src, b.caption(spec), "near_duplicate", expected,
                    note=f"near-duplicate group {g}: {what}")


def _add_bad_images(b: _Builder) -> None:
    """Decodable images the image rules drop, and bytes that do not decode."""
    for i, size in enumerate(((16, 16), (24, 24), (30, 20))):
        spec = b.spec(count=1)
        src = f"/img/icons/tiny_{i}.jpg"
        b.serve_scene(src, spec, size)
        b.place(b.any_page(), src, b.caption(spec), "tiny_icon", DropReason.IMAGE_TOO_SMALL,
                note=f"{size[0]}x{size[1]}")
    for i, size in enumerate(((728, 90), (600, 60), (468, 60))):
        spec = b.spec(count=1)
        src = f"/img/banners/banner_{i}.jpg"
        b.serve_scene(src, spec, size)
        b.place(b.any_page(), src, b.caption(spec), "banner", DropReason.IMAGE_BAD_ASPECT,
                note=f"{size[0]}x{size[1]}")
    for i, fraction in enumerate((0.4, 0.3)):
        spec = b.spec()
        body = encode_jpeg(b.image(spec))
        src = f"/img/broken_{i}.jpg"
        b.serve(src, body[: int(len(body) * fraction)], JPEG)
        b.place(b.any_page(), src, b.caption(spec), "truncated_jpeg", DropReason.IMAGE_UNDECODABLE,
                note=f"first {fraction:.0%} of a JPEG")


def _add_http_cases(b: _Builder) -> None:
    """HTTP errors, HTML served as an image, noai headers, robots.txt and redirects."""
    error_page = b"<!DOCTYPE html><html><body><h1>Error</h1></body></html>"
    for i, src in enumerate(("/img/gone_0.jpg", "/img/gone_1.jpg", "/img/never_existed.jpg")):
        if i < 2:
            b.serve(src, error_page, HTML_TYPE, status=404 if i == 0 else 410)
        note = "not a resource: the server's default 404" if i == 2 else f"served as {404 if i == 0 else 410}"
        b.place(b.any_page(), src, b.caption(b.spec()), "http_404", DropReason.FETCH_HTTP_4XX, note=note)
    for i, status in enumerate((500, 502)):
        src = f"/img/error_{i}.jpg"
        b.serve(src, error_page, HTML_TYPE, status=status)
        b.place(b.any_page(), src, b.caption(b.spec()), "http_500", DropReason.FETCH_HTTP_5XX,
                note=f"served as {status}")
    for i, content_type in enumerate((JPEG, JPEG, HTML_TYPE)):
        src = f"/img/fake_{i}.jpg"
        sorry = f"<!DOCTYPE html><html><body><p>Sorry, image {i} is not available.</p></body></html>"
        b.serve(src, sorry.encode("ascii"), content_type)
        b.place(b.any_page(), src, b.caption(b.spec()), "not_image", DropReason.FETCH_NOT_IMAGE,
                note=f"HTML body served as {content_type}")
    for i, tag in enumerate(("noai", "noai, noimageai", "noimageai")):
        spec, src = b.spec(), f"/img/noai_{i}.jpg"
        b.serve_scene(src, spec, extra=(("X-Robots-Tag", tag),))
        b.place(b.any_page(), src, b.caption(spec), "noai", DropReason.FETCH_NOAI,
                note=f"X-Robots-Tag: {tag}")
    for i in range(2):
        spec, src = b.spec(), f"/private/photo_{i}.jpg"
        b.serve_scene(src, spec)
        b.place(b.any_page(), src, b.caption(spec), "robots_disallowed", DropReason.FETCH_ROBOTS,
                note="robots.txt disallows /private/")
    for i, status in enumerate((302, 302, 301)):
        spec, src, target = b.spec(), f"/r/img{i}.jpg", f"/img/moved/target_{i}.jpg"
        b.serve_scene(target, spec)
        b.resources[src] = Resource(status, (("Location", target),), b"")
        b.place(b.any_page(), src, b.caption(spec), "redirect", KEPT, note=f"{status} to {target}")


def _check(manifest: list[ManifestEntry]) -> None:
    pairs = [(e.page_path, e.image_path) for e in manifest]
    if len(pairs) != len(set(pairs)):
        raise RuntimeError("a page references the same image twice")  # a generator bug


def generate_site(seed: int = 0, n_pages: int = 24, mismatched_share: Optional[float] = None) -> SampleSite:
    """Build the sample web: ``/index.html`` plus ``n_pages`` pages under ``/pages/``."""
    if n_pages < 1:
        raise ValueError(f"n_pages must be >= 1, got {n_pages}")
    if mismatched_share is not None and not 0.0 <= mismatched_share < 0.95:
        raise ValueError(f"mismatched_share must be in [0, 0.95), got {mismatched_share}")
    b = _Builder(seed, n_pages)
    _add_regular(b, mismatched_share)
    _add_junk(b)
    _add_exact_duplicates(b)
    _add_url_repeats(b)
    _add_near_duplicates(b)
    _add_bad_images(b)
    _add_http_cases(b)
    manifest: list[ManifestEntry] = []
    for i, page in enumerate(b.pages):
        placed = b.placed[page]
        b.rng.shuffle(placed)
        b.serve(page, render_page(b.pages, i, placed, b.rng), HTML_TYPE)
        manifest.extend(p.entry for p in placed)
    b.serve("/robots.txt", ROBOTS_TXT.encode("ascii"), "text/plain; charset=utf-8")
    _check(manifest)
    logger.debug("sample site seed=%d: %d pages, %d pairs, %d resources",
                 seed, len(b.pages), len(manifest), len(b.resources))
    return SampleSite(
        resources=b.resources, manifest=manifest, seed_paths=["/index.html"], robots_txt=ROBOTS_TXT,
        page_paths=tuple(b.pages), seed=seed,
    )


def write_site(site: SampleSite, directory) -> Path:
    """Write every resource body as a file under ``directory``, plus ``manifest.json`` and
    ``resources.json`` (status and headers per path). Returns the manifest's path."""
    root = Path(directory).resolve()
    meta = {}
    for path, res in sorted(site.resources.items()):
        target = (root / path.lstrip("/")).resolve()
        if root not in target.parents:
            raise ValueError(f"resource path escapes the output directory: {path}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(res.body)
        meta[path] = {"status": res.status, "headers": [list(h) for h in res.headers], "size": len(res.body)}
    (root / "resources.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    manifest = root / "manifest.json"
    manifest.write_text(site.manifest_json() + "\n", encoding="utf-8")
    return manifest


__all__ = [
    "JUNK_CASES", "KEPT", "KINDS", "ManifestEntry", "ROBOTS_TXT", "Resource", "SampleSite",
    "generate_site", "manifest_by_pair", "write_site",
]
