"""The generated sample web: deterministic, complete manifest, every case present and well formed."""

import collections
import hashlib
import io
import json
import urllib.robotparser
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest
from PIL import Image

from pipeline.records import DropReason
from pipeline.sample import generate_site, manifest_by_pair, write_site
from pipeline.sample.site import KEPT, KINDS

BASE = "http://sample.test"


def _images_on(site, page):
    doc = lxml.html.fromstring(site.resources[page].body.decode("ascii"))
    return [(img.get("src"), img.get("alt")) for img in doc.iter("img")]


def _resolve(site, path, hops=5):
    """Follow redirects inside the site's resources, as an HTTP client would."""
    res = site.resources.get(path)
    while res is not None and res.status in (301, 302, 303, 307, 308) and hops:
        path, hops = urlsplit(urljoin(BASE + path, res.header("Location"))).path, hops - 1
        res = site.resources.get(path)
    return path, res


def _decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def test_generation_is_deterministic(site):
    again = generate_site()
    assert again.resources == site.resources
    assert again.manifest == site.manifest
    assert again.manifest_json() == site.manifest_json()
    other = generate_site(seed=1)
    assert other.resources["/index.html"].body != site.resources["/index.html"].body


def test_every_img_has_exactly_one_manifest_entry(site):
    by_page = collections.defaultdict(list)
    for entry in site.manifest:
        by_page[entry.page_path].append(entry)
    assert set(by_page) <= set(site.page_paths)
    for page in site.page_paths:
        found = _images_on(site, page)
        entries = by_page[page]
        assert [src for src, _ in found] == [e.image_path for e in entries], page
        for (src, alt), entry in zip(found, entries):
            assert (alt or "") == entry.alt, (page, src)
            assert (alt is None) == (entry.note == "alt attribute missing")
    assert len(manifest_by_pair(site)) == len(site.manifest)


def test_every_kind_and_reason_has_two_rows(site):
    kinds = collections.Counter(e.kind for e in site.manifest)
    assert set(kinds) == set(KINDS)
    assert min(kinds.values()) >= 2, kinds
    reasons = collections.Counter(e.expected for e in site.manifest if e.expected != KEPT)
    assert min(reasons.values()) >= 2, reasons
    valid = {r.value for r in DropReason} | {KEPT}
    assert {e.expected for e in site.manifest} <= valid
    assert 250 <= len(site.manifest) <= 350
    assert 0.5 <= kinds["matched"] / len(site.manifest) <= 0.7


def test_kept_images_decode_and_pass_image_rules(site):
    for entry in site.manifest:
        if entry.expected != KEPT:
            continue
        _, res = _resolve(site, entry.image_path)
        assert res is not None and res.status == 200, entry
        assert res.header("Content-Type") in ("image/jpeg", "image/png")
        w, h = _decode(res.body).size
        assert min(w, h) >= 32 and max(w, h) / min(w, h) <= 3.0, entry
        if entry.kind == "matched":
            assert 160 <= min(w, h) and max(w, h) <= 320 and 0.75 <= w / h <= 1.34
        words = entry.alt.split()
        assert 3 <= len(words) <= 64


def test_all_referenced_images_are_unique_bytes_except_exact_duplicates(site):
    by_hash = collections.defaultdict(set)
    for entry in site.manifest:
        path, res = _resolve(site, entry.image_path)
        if res is not None and res.status == 200:
            by_hash[hashlib.sha256(res.body).hexdigest()].add(path)
    groups = [sorted(paths) for paths in by_hash.values() if len(paths) > 1]
    assert len(groups) == 5
    expected = manifest_by_pair(site)
    for a, b in groups:
        assert a.startswith("/img/dupA_") and b.startswith("/img/dupB_")
        assert {e.expected for (p, src), e in expected.items() if src == a} == {KEPT}
        assert {e.expected for (p, src), e in expected.items() if src == b} == {"dedupe.image_exact"}


def test_url_repeats_keep_the_smallest_page(site):
    pages = collections.defaultdict(list)
    for entry in site.manifest:
        pages[entry.image_path].append(entry)
    repeated = {src: es for src, es in pages.items() if len(es) > 1}
    assert repeated and all(e.kind == "url_repeat" for es in repeated.values() for e in es)
    for entries in repeated.values():
        entries.sort(key=lambda e: e.page_path)
        assert [e.expected for e in entries] == [KEPT] + ["dedupe.url"] * (len(entries) - 1)


def test_near_duplicate_groups(site):
    groups = collections.defaultdict(list)
    for entry in site.manifest:
        if entry.kind == "near_duplicate":
            groups[entry.image_path.rsplit("_", 1)[0]].append(entry)
    assert len(groups) == 5
    for entries in groups.values():
        entries.sort(key=lambda e: e.image_path)
        assert len(entries) == 4 and [e.image_path[-6:] for e in entries] == ["_a.jpg", "_b.jpg", "_c.jpg", "_d.jpg"]
        assert [e.expected for e in entries] == [KEPT, *["dedupe.image_near"] * 3]  # the original survives
        sizes = {_decode(site.resources[e.image_path].body).size for e in entries}
        assert len(sizes) == 3  # original and re-encode share a size; rescale and crop differ


def test_bad_images(site):
    for entry in site.manifest:
        res = site.resources.get(entry.image_path)
        if entry.kind == "truncated_jpeg":
            assert res.body[:3] == b"\xff\xd8\xff"
            with pytest.raises(OSError):
                _decode(res.body)
        elif entry.kind == "tiny_icon":
            assert min(_decode(res.body).size) < 32
        elif entry.kind == "banner":
            w, h = _decode(res.body).size
            assert max(w, h) / min(w, h) > 3.0
        elif entry.kind == "not_image":
            assert res.status == 200 and res.body.lstrip().startswith(b"<!DOCTYPE html>")


def test_http_cases(site):
    robots = urllib.robotparser.RobotFileParser()
    robots.parse(site.robots_txt.splitlines())
    referenced = {e.image_path for e in site.manifest}
    for entry in site.manifest:
        res = site.resources.get(entry.image_path)
        if entry.kind == "http_404":
            assert res is None or 400 <= res.status < 500
        elif entry.kind == "http_500":
            assert 500 <= res.status < 600
        elif entry.kind == "noai":
            assert "noai" in res.header("X-Robots-Tag") or "noimageai" in res.header("X-Robots-Tag")
        elif entry.kind == "robots_disallowed":
            assert res.status == 200 and not robots.can_fetch("*", BASE + entry.image_path)
        elif entry.kind == "redirect":
            assert res.status in (301, 302) and res.header("Location") not in referenced
            final, target = _resolve(site, entry.image_path)
            assert final != entry.image_path and target.status == 200
        if entry.kind != "robots_disallowed":
            assert robots.can_fetch("*", BASE + entry.image_path)
    assert site.resources["/robots.txt"].body.decode() == site.robots_txt
    assert all(robots.can_fetch("*", BASE + page) for page in site.page_paths)


def _links(site, page):
    doc = lxml.html.fromstring(site.resources[page].body.decode("ascii"))
    for href in doc.xpath("//a/@href"):
        url = urlsplit(urljoin(BASE + page, href))
        if f"{url.scheme}://{url.netloc}" == BASE:
            yield url.path


def test_whole_site_reachable_within_depth_3(site):
    depth = {path: 0 for path in site.seed_paths}
    frontier = list(site.seed_paths)
    while frontier:
        page = frontier.pop(0)
        res = site.resources.get(page)
        if res is None or res.status != 200 or not res.header("Content-Type").startswith("text/html"):
            continue
        for link in _links(site, page):
            if link not in depth and depth[page] < 3:
                depth[link] = depth[page] + 1
                frontier.append(link)
    assert set(site.page_paths) <= set(depth)
    assert max(depth[p] for p in site.page_paths) <= 3
    assert "/pages/missing.html" in depth and "/pages/missing.html" not in site.resources


def test_pages_look_like_real_html(site):
    for page in site.page_paths:
        body = site.resources[page].body
        assert body.startswith(b"<!DOCTYPE html>") and body.isascii()
        doc = lxml.html.fromstring(body.decode("ascii"))
        assert doc.get("lang") == "en"
        assert doc.findtext(".//title") and doc.findall(".//h2") and doc.findall(".//nav")
    all_html = b"".join(site.resources[p].body for p in site.page_paths)
    assert b"<figure>" in all_html and b"<figcaption>" in all_html


@pytest.mark.parametrize("n_pages", [1, 3])
def test_small_sites_still_have_every_kind(n_pages):
    small = generate_site(seed=5, n_pages=n_pages)
    assert {e.kind for e in small.manifest} == set(KINDS)
    assert len(small.page_paths) == n_pages + 1
    assert len(manifest_by_pair(small)) == len(small.manifest)


def test_rejects_zero_pages():
    with pytest.raises(ValueError):
        generate_site(n_pages=0)


def test_write_site(site, tmp_path):
    manifest_path = write_site(site, tmp_path)
    doc = json.loads(manifest_path.read_text())
    assert len(doc["entries"]) == len(site.manifest) and doc["seed_paths"] == ["/index.html"]
    assert (tmp_path / "index.html").read_bytes() == site.resources["/index.html"].body
    assert (tmp_path / "robots.txt").read_text() == site.robots_txt
    meta = json.loads((tmp_path / "resources.json").read_text())
    assert set(meta) == set(site.resources) and meta["/r/img0.jpg"]["status"] in (301, 302)
