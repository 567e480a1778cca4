"""``wit inspect OUT --html PATH``: a static report folder that opens from disk, no server.

Input: a ``RunData`` and the report path. Output: ``PATH`` (one HTML file; CSS and
the threshold slider's script inline) and ``<stem>_assets/`` beside it with the
charts (PNG, matplotlib) and JPEG thumbnails of the samples shown. Only images
stored in the output can be shown: kept samples, and pairs dropped after their image was
downloaded (the rejections parquet ``thumbnail``, transforms/reject_thumbnails.py: a grid
per drop reason); an exact duplicate without one shows the kept copy; the other dropped
samples show caption, URL, reason and detail. Also: the pages that failed and why, the
opt-outs per domain, and the run (date, duration, runner, scorer, config hash).

Text from the web (captions, URLs, details) is escaped by Jinja's autoescape. URLs are
what was crawled, not something known to be live: each is marked "crawled URL, may be
gone", and only public http(s) hosts become (so marked) links; loopback, private and
reserved-name hosts (the demo's and the tests' servers, gone once the run ended) are text.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import os
import re
import shutil
from dataclasses import asdict
from typing import Optional
from urllib.parse import quote, urlsplit

import jinja2
from PIL import Image

from pipeline.report import balance_plot, content, plots
from pipeline.report.loader import ReportInputError, RunData, read_images, read_reject_thumbnails

log = logging.getLogger(__name__)

TEMPLATE = "report.html.j2"
MARKER = ".wit-report"  # marks an assets folder as ours, so a rerun may clear it
THUMB_SIDE = 192
KEPT_GRID, BORDERLINE_GRID, PER_REASON, STRIP = 24, 12, 8, 12


def assets_dir_for(html_path: str) -> str:
    stem = os.path.splitext(os.path.basename(html_path))[0]
    return os.path.join(os.path.dirname(os.path.abspath(html_path)), f"{stem}_assets")


def _prepare_assets(assets: str) -> None:
    if os.path.isdir(assets):
        if not os.path.exists(os.path.join(assets, MARKER)):
            raise ReportInputError(f"{assets} exists and was not written by wit inspect; "
                                  "choose another --html path")
        shutil.rmtree(assets)
    os.makedirs(os.path.join(assets, "thumbs"))
    with open(os.path.join(assets, MARKER), "w", encoding="utf-8") as fh:
        fh.write("written by wit inspect --html; deleted and rewritten on the next run\n")


def anchor(reason: str) -> str:
    """The page's id for a reason's section (reasons from img2dataset are free text)."""
    return "reason-" + (re.sub(r"[^a-z0-9]+", "-", reason.lower()).strip("-") or "unknown")


CRAWLED_TITLE = "crawled URL, may be gone"
# RFC 2606 / 6761 names that never resolve on the public web
_RESERVED_SUFFIXES = (".localhost", ".test", ".invalid", ".example", ".local", ".internal")


def _public_host(host: str) -> bool:
    host = host.rstrip(".").lower()
    if not host or host == "localhost" or host.endswith(_RESERVED_SUFFIXES):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:  # a name, not an address literal
        return "." in host


def crawled_url(url: Optional[str]) -> Optional[dict]:
    """A crawled http(s) URL as the page shows it: ``{"text", "full", "href"}``; ``href`` (a link)
    only on public hosts, else None (shown as text). None for no URL or another scheme
    (``javascript:``, ``data:``: never shown)."""
    if not url or url.split(":", 1)[0].lower() not in ("http", "https"):
        return None
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:  # a bad port or IPv6 literal: text only
        host = ""
    return {"text": short_url(url), "full": url, "href": url if _public_host(host) else None}


def _web_url(url: Optional[str]) -> Optional[dict]:
    return crawled_url(url)


def short_url(url: str, limit: int = 60) -> str:
    """``host/path`` without the scheme, shortened in the middle (for tables)."""
    text = url.split("://", 1)[-1]
    return text if len(text) <= limit else text[:limit // 2 - 1] + "…" + text[-(limit // 2):]


def _thumbnail(data: bytes) -> Optional[bytes]:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMB_SIDE, THUMB_SIDE))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85)
            return out.getvalue()
    except (OSError, ValueError) as exc:  # a stored image that does not decode: show no thumbnail
        log.warning("thumbnail failed: %s", exc)
        return None


def _is_image(data: bytes) -> bool:
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        return True
    except (OSError, ValueError, SyntaxError) as exc:  # a damaged stored thumbnail: show none
        log.warning("stored thumbnail does not decode: %s", exc)
        return False


class _Thumbs:
    """Writes each needed thumbnail once; maps a kept key (or a dropped one, ``dropped``) to its URL."""

    def __init__(self, run: RunData, assets: str):
        self.run, self.assets = run, assets
        self.rel = quote(os.path.basename(assets))
        self.urls: dict[str, str] = {}
        self.dropped_urls: dict[str, str] = {}

    def _write(self, name: str, data: bytes) -> str:
        with open(os.path.join(self.assets, "thumbs", name), "wb") as fh:
            fh.write(data)
        return f"{self.rel}/thumbs/{quote(name)}"

    def add_dropped(self, rows: list[dict]) -> None:
        """Thumbnails stored with the rejections (pairs dropped after download), written as they are."""
        todo = [r["key"] for r in rows if r.get("key") and r["key"] not in self.dropped_urls]
        for key, data in read_reject_thumbnails(self.run, todo).items():
            if _is_image(data):
                name = "dropped-" + re.sub(r"[^A-Za-z0-9_-]", "_", key) + ".jpg"
                self.dropped_urls[key] = self._write(name, data)

    def dropped(self, key: Optional[str]) -> Optional[str]:
        return self.dropped_urls.get(key) if key else None

    def add(self, rows: list[dict]) -> None:
        todo = [r for r in rows if r and r.get("key") not in self.urls]
        for key, data in read_images(self.run, todo).items():
            thumb = _thumbnail(data)
            if thumb is None:
                continue
            self.urls[key] = self._write(re.sub(r"[^A-Za-z0-9_-]", "_", key) + ".jpg", thumb)

    def url(self, key: Optional[str]) -> Optional[str]:
        return self.urls.get(key) if key else None


def _kept_card(row: dict, thumbs: _Thumbs) -> dict:
    return {"key": row["key"], "thumb": thumbs.url(row["key"]), "caption": row["caption"] or "",
            "score": row.get("clip_score"), "image_url": _web_url(row.get("url")),
            "page_url": _web_url(row.get("page_url")), "size": _size(row)}


def _size(row: dict) -> Optional[str]:
    w, h = row.get("original_width"), row.get("original_height")
    return f"{w}×{h}" if w and h else None


def _dropped_card(row: dict, thumbs: _Thumbs, survivor: Optional[str]) -> dict:
    own = thumbs.dropped(row["key"])  # the dropped image itself, when it was downloaded
    return {"key": row["key"], "thumb": own or thumbs.url(survivor), "own_thumb": bool(own),
            "caption": row["caption"] or "", "score": row.get("clip_score"),
            "image_url": _web_url(row.get("image_url")), "page_url": _web_url(row.get("page_url")),
            "reason": row["reason"], "detail": row.get("detail") or "", "survivor": survivor}


def _reason_sections(run: RunData, thumbs: _Thumbs, seed: int) -> list[dict]:
    sections = []
    for i, r in enumerate(content.reason_rows(run)):
        rows = content.pick_rows(content.dropped_with_reason(run, r.reason), PER_REASON, seed + i)
        survivors = {row["key"]: content.duplicate_of(row.get("detail"))
                     for row in rows if row["reason"] in content.DUPLICATE_REASONS}
        thumbs.add_dropped(rows)
        thumbs.add([{"key": k, "shard": s} for k, s in _shards_of(run, survivors.values()).items()])
        cards = [_dropped_card(row, thumbs, survivors.get(row["key"])) for row in rows]
        sections.append({"reason": r.reason, "stage": r.stage, "count": r.count, "anchor": anchor(r.reason),
                         "share": content.percent(r.count, run.stats.get("pairs_extracted", 0)),
                         "cards": cards})
    return sections


def _shards_of(run: RunData, keys) -> dict:
    wanted = {k for k in keys if k}
    return {row["key"]: row["shard"] for row in content.rows_by_key(run.kept, wanted).values()}


def _group_view(group: dict, thumbs: _Thumbs, same: str) -> dict:
    return {"kept": _kept_card(group["kept"], thumbs) if group["kept"] else None, "key": group["key"],
            "copies": [{"caption": c.get("caption") or "",
                        "thumb": thumbs.dropped(c.get("key")) or thumbs.url(c.get("key")),
                        "url": _web_url(c.get("image_url") or c.get("url")),
                        "reason": c.get("reason") or same, "detail": c.get("detail") or ""}
                       for c in group["copies"]]}


def _duplicates(run: RunData, thumbs: _Thumbs) -> dict:
    exact, near = content.exact_duplicate_groups(run), content.near_duplicate_groups(run)
    groups = exact + (near or [])
    # kept copies (img2dataset, or phash groups) have stored images; dropped ones their thumbnails
    thumbs.add([g["kept"] for g in groups if g["kept"]] + [c for g in groups for c in g["copies"]])
    thumbs.add_dropped([c for g in groups for c in g["copies"] if c.get("reason")])
    return {"exact": [_group_view(g, thumbs, "same sha256") for g in exact],
            "near": None if near is None else [_group_view(g, thumbs, "same phash") for g in near]}


def _failed_pages_view(run: RunData) -> dict:
    failed = content.failed_pages(run)
    samples = [dict(s, page=crawled_url(s.get("url"))) for s in failed["samples"]]
    return dict(failed, samples=samples, shown=len(samples))


def _charts(run: RunData, assets: str) -> dict:
    kept_scores, dropped_scores = content.scores(run)
    thresholds = run.stats.get("thresholds") or {}
    kept_sizes = [(r["original_width"], r["original_height"]) for r in run.kept.select(
        ["original_width", "original_height"]).to_pylist() if r["original_width"] and r["original_height"]]
    made = {
        "funnel": plots.funnel_chart(run.stats.get("funnel", []), os.path.join(assets, "funnel.png")),
        "scores": plots.score_histogram(kept_scores, dropped_scores, thresholds.get("clip_min_score"),
                                        os.path.join(assets, "clip_scores.png")),
        "captions": plots.caption_length_chart(content.caption_words(run.kept),
                                               content.caption_words(run.dropped),
                                               os.path.join(assets, "caption_words.png")),
        "sizes": plots.image_size_chart(kept_sizes, content.dropped_image_sizes(run),
                                        thresholds.get("image_min_side"), thresholds.get("image_max_aspect"),
                                        os.path.join(assets, "image_sizes.png")),
        "balance": balance_plot.balance_chart(run.stats.get("balance"), os.path.join(assets, "balance.png")),
    }
    rel = quote(os.path.basename(assets))
    return {name: f"{rel}/{os.path.basename(path)}" if path else None for name, path in made.items()}


def _threshold_view(run: RunData) -> dict:
    kept, dropped = content.scores(run)
    current = (run.stats.get("thresholds") or {}).get("clip_min_score")
    data = {"kept": [round(s, 4) for s in kept], "dropped": [round(s, 4) for s in dropped],
            "current": current}
    return {"rows": content.threshold_rows(kept, dropped, current), "data": data,
            "min": round(min(kept + dropped), 3) if kept or dropped else 0,
            "max": round(max(kept + dropped), 3) if kept or dropped else 1}


def write_report(run: RunData, html_path: str, seed: int = 0) -> str:
    """Write the report; return the absolute path of the HTML file."""
    html_path = os.path.abspath(html_path)
    os.makedirs(os.path.dirname(html_path), exist_ok=True)
    assets = assets_dir_for(html_path)
    _prepare_assets(assets)
    thumbs = _Thumbs(run, assets)
    kept_rows = content.pick_rows(run.kept, KEPT_GRID, seed)
    borderline = content.lowest_scored(run.kept, BORDERLINE_GRID)
    thumbs.add(kept_rows + borderline)
    context = {
        "run": run, "stats": run.stats, "headline": content.headline(run),
        "reasons": [dict(asdict(r), anchor=anchor(r.reason)) for r in content.reason_rows(run)],
        "licenses": content.license_rows(run),
        "percent": content.percent,
        "charts": _charts(run, assets), "threshold": _threshold_view(run),
        "kept": [_kept_card(r, thumbs) for r in kept_rows],
        "strip": [c for c in (_kept_card(r, thumbs) for r in kept_rows) if c["thumb"]][:STRIP],
        "borderline": [_kept_card(r, thumbs) for r in borderline],
        "dropped": _reason_sections(run, thumbs, seed), "duplicates": _duplicates(run, thumbs),
        "title": os.path.basename(os.path.normpath(run.root)) or run.root,
        "failed_pages": _failed_pages_view(run), "opt_out": content.opt_out_view(run),
        "run_rows": content.run_rows(run),
    }
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.dirname(__file__)),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["urlpath"] = short_url
    env.filters["human_bytes"] = content.human_bytes
    page = env.get_template(TEMPLATE).render(**context)
    tmp = html_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, html_path)
    log.info("report written: %s (%d thumbnails, %d of dropped images)", html_path, len(thumbs.urls),
             len(thumbs.dropped_urls))
    return html_path
