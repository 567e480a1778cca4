"""``wit curate --warc``: a WARC and a WAT written with warcio and an ARC, curated end to end (scoring off).

Images the archive holds are answered from it, whatever their format: used (JPEG, PNG), or
rejected with the capture's reason (an SVG, a truncated capture, a noai one). The loopback server
serves a good JPEG at each of those URLs and is asserted not to be hit for any of them, while the
images the archive lacks are downloaded from it.
"""

import hashlib
import io
import json

from PIL import Image

from pipeline import shard_format
from pipeline.cli import main
from pipeline.records import DropReason
from tests.transforms.warc_fixtures import SVG, ArcBuilder, ArchiveBuilder, gzipped, jpeg


def _png(colour) -> bytes:
    buf = io.BytesIO()
    img = Image.new("RGB", (80, 60), colour)
    for x in range(80):
        img.putpixel((x, 30), (0, 0, 0))
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write_archives(tmp_path, base: str) -> dict:
    red, blue = jpeg((220, 20, 20), stripe=(255, 255, 255)), jpeg((20, 20, 220))
    yellow = jpeg((230, 220, 20), stripe=(0, 0, 0))
    page1 = """<html><head><title>Shapes</title></head><body><h1>Squares</h1>
      <img src="/archived.jpg" alt="A red square with a white stripe">
      <img src="/live.jpg" alt="A green square from the live server">
      <img src="/truncated.jpg" alt="A yellow square cut short in the archive">
      <img src="/archived.svg" alt="A vector drawing of a black square">
      <img src="/noai.jpg" alt="An orange square its owner opted out of AI use">
      <img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="inline pixel">
      <img src="/t.gif" width="1" height="1" alt="">
      <img src="/noalt.jpg"></body></html>""".encode()
    page2 = b'<html><body><img src="archived2.png" alt="A purple rectangle with a black line"></body></html>'
    warc = (ArchiveBuilder().warcinfo().request(f"{base}/page1.html").response(f"{base}/page1.html", page1)
            .response(f"{base}/archived.jpg", blue, "image/jpeg", date="2023-01-01T00:00:00Z")  # older capture
            .response(f"{base}/archived.jpg", red, "image/jpeg", date="2024-05-18T01:58:10Z")
            .response(f"{base}/truncated.jpg", yellow[:300], "image/jpeg", warc_headers={"WARC-Truncated": "length"})
            .response(f"{base}/archived.svg", SVG, "image/svg+xml")
            .response(f"{base}/noai.jpg", jpeg((240, 140, 0)), "image/jpeg", extra_headers=[("X-Robots-Tag", "noai")])
            .response(f"{base}/sub/page2.html", gzipped(page2), extra_headers=[("Content-Encoding", "gzip")])
            .response(f"{base}/sub/archived2.png", _png((150, 40, 200)), "image/png")
            .revisit(f"{base}/page3.html").response(f"{base}/gone.html", b"<html>gone</html>", status=404)
            .response(f"{base}/doc.pdf", b"%PDF-1.4", "application/pdf"))
    wat = (ArchiveBuilder(gzip_records=False)
           .wat(f"{base}/page4.html", [{"path": "IMG@/src", "url": "/wat.jpg", "alt": "A cyan square listed in the WAT"},
                                       {"path": "IMG@/src", "url": "data:image/png;base64,iVBO", "alt": "inline"}],
                title="From WAT")
           .wat(f"{base}/page4.html", [], warc_type="request"))
    arc = (ArcBuilder().response(f"{base}/old/page5.html", b'<html><body><img src="arc.jpg" '
                                                           b'alt="A grey square kept in an old ARC file"></body></html>')
           .response(f"{base}/old/arc.jpg", jpeg((120, 120, 120), stripe=(255, 255, 0)), "image/jpeg"))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "crawl.arc.gz").write_bytes(arc.getvalue())
    (tmp_path / "in" / "crawl.warc.gz").write_bytes(warc.getvalue())
    (tmp_path / "in" / "crawl.wat").write_bytes(wat.getvalue())
    return {"red": red, "yellow": yellow}


def test_warc_and_wat_round_trip_through_curate(scripted_server, tmp_path):
    base, routes, hits = scripted_server
    images = _write_archives(tmp_path, base)
    routes["/live.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg((20, 200, 20), stripe=(255, 0, 255)))
    routes["/wat.jpg"] = (200, {"Content-Type": "image/jpeg"}, jpeg((20, 220, 220), stripe=(90, 0, 0)))
    held = ("/archived.jpg", "/sub/archived2.png", "/truncated.jpg", "/archived.svg", "/noai.jpg", "/old/arc.jpg")
    for n, path in enumerate(held):  # a good image live at each URL the archive holds: fetching it would keep it
        routes[path] = (200, {"Content-Type": "image/jpeg"}, jpeg((n * 40, 90, 200 - n * 30), stripe=(0, 0, 0)))
    out = tmp_path / "out"
    code = main(["curate", "--warc", str(tmp_path / "in" / "crawl.*"), "--output", str(out),
                 "--allow-private-networks", "--set", "score.enabled=false", "--set", "fetch.retries=0"])
    assert code == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounting_ok"] and (stats["pairs_extracted"], stats["kept"], stats["rejected"]) == (12, 5, 7)
    assert stats["rejected_by_reason"] == {
        DropReason.EXTRACT_DATA_URI.value: 2, DropReason.EXTRACT_TRACKER.value: 1, DropReason.CAPTION_EMPTY.value: 1,
        DropReason.FETCH_INCOMPLETE.value: 1, DropReason.FETCH_UNSUPPORTED.value: 1, DropReason.FETCH_NOAI.value: 1}
    funnel = {row["stage"]: row for row in stats["funnel"]}
    assert (funnel["FetchImages"]["dropped"], funnel["ResizeImages"]["dropped"]) == (
        {"fetch.incomplete_body": 1, "fetch.noai": 1, "fetch.unsupported_format": 1}, {})
    samples = stats["pages"].pop("failed_samples")
    assert stats["pages"] == {"fetched": 3, "failed": 2, "failed_by_reason": {"warc.http_status": 1, "warc.revisit": 1}}
    assert sorted(s["reason"] for s in samples) == ["warc.http_status", "warc.revisit"]
    assert stats["warc"] == {"records": {"html": 3, "http_error": 1, "image": 4, "image_noai": 1, "image_truncated": 1,
                                         "image_unsupported": 1, "metadata": 1, "other": 1, "request": 1,
                                         "revisit": 1, "wat": 1, "warcinfo": 2},
                             "warnings": {}, "pairs_with_archived_image": 3, "pairs_rejected_from_archive": 3}
    # what the archive holds is never requested live, whatever its outcome; the others were downloaded once
    assert not [path for path in held if path in hits]
    assert (hits["/live.jpg"], hits["/wat.jpg"]) == (1, 1)
    rows = {r["url"].removeprefix(base): r for r in shard_format.read_samples_table(str(out / "shards")).to_pylist()}
    assert sorted(rows) == ["/archived.jpg", "/live.jpg", "/old/arc.jpg", "/sub/archived2.png", "/wat.jpg"]
    assert rows["/archived.jpg"]["sha256"] == hashlib.sha256(images["red"]).hexdigest()  # the latest capture
    assert rows["/archived.jpg"]["page_title"] == "Shapes" and rows["/archived.jpg"]["heading"] == "Squares"
    assert rows["/wat.jpg"]["page_title"] == "From WAT"
    assert rows["/sub/archived2.png"]["page_url"] == f"{base}/sub/page2.html"  # gzip-encoded page decoded
    assert rows["/old/arc.jpg"]["page_url"] == f"{base}/old/page5.html"      # read from the ARC file


def test_warc_glob_matching_nothing_is_a_usage_error(tmp_path, capsys):
    assert main(["curate", "--warc", str(tmp_path / "none-*.warc.gz"), "--output", str(tmp_path / "o")]) == 2
    assert "no WARC file matches" in capsys.readouterr().err
