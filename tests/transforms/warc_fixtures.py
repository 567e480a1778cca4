"""Build small WARC and WAT files with warcio for the tests (Common Crawl's record shapes)."""

from __future__ import annotations

import gzip
import io
import json

from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter


def jpeg(colour, size=(64, 64), stripe=None) -> bytes:
    img = Image.new("RGB", size, colour)
    if stripe:
        for x in range(size[0]):
            for y in range(0, size[1] // 3):
                img.putpixel((x, y), stripe)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class ArchiveBuilder:
    """Records appended in order; ``getvalue()`` gives the file bytes (gzip per record or plain)."""

    def __init__(self, gzip_records: bool = True):
        self.buf = io.BytesIO()
        self.writer = WARCWriter(self.buf, gzip=gzip_records)

    def _write(self, record) -> None:
        self.writer.write_record(record)

    def warcinfo(self) -> "ArchiveBuilder":
        self._write(self.writer.create_warcinfo_record("test.warc.gz", {"software": "tests"}))
        return self

    def response(self, url: str, body: bytes, content_type: str = "text/html; charset=utf-8", status: int = 200,
                 date: str = "2024-05-18T01:58:10Z", extra_headers=(), warc_headers=None) -> "ArchiveBuilder":
        reason = {200: "OK", 404: "Not Found", 301: "Moved Permanently"}.get(status, "X")
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra_headers]
        http = StatusAndHeaders(f"{status} {reason}", headers, protocol="HTTP/1.1")
        rec = self.writer.create_warc_record(url, "response", payload=io.BytesIO(body), http_headers=http,
                                             warc_headers_dict={"WARC-Date": date, **(warc_headers or {})})
        self._write(rec)
        return self

    def request(self, url: str) -> "ArchiveBuilder":
        http = StatusAndHeaders(f"GET {url} HTTP/1.1", [("User-Agent", "test")], is_http_request=True)
        self._write(self.writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=http))
        return self

    def revisit(self, url: str, content_type: str = "text/html") -> "ArchiveBuilder":
        http = StatusAndHeaders("200 OK", [("Content-Type", content_type)], protocol="HTTP/1.1")
        rec = self.writer.create_revisit_record(url, digest="sha1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                                refers_to_uri=url, refers_to_date="2024-01-01T00:00:00Z",
                                                http_headers=http)
        self._write(rec)
        return self

    def wat(self, page_url: str, links, title: str = "", warc_type: str = "response", status: str = "200",
            base: str = "") -> "ArchiveBuilder":
        head = {"Title": title, **({"Base": base} if base else {})}
        envelope = {"Envelope": {
            "WARC-Header-Metadata": {"WARC-Type": warc_type, "WARC-Target-URI": page_url},
            "Payload-Metadata": {"Actual-Content-Type": "application/http; msgtype=response",
                                 "HTTP-Response-Metadata": {"Response-Message": {"Status": status},
                                                            "HTML-Metadata": {"Head": head, "Links": links}}}}}
        payload = json.dumps(envelope).encode("utf-8")
        rec = self.writer.create_warc_record(page_url, "metadata", payload=io.BytesIO(payload),
                                             warc_content_type="application/json")
        self._write(rec)
        return self

    def getvalue(self) -> bytes:
        return self.buf.getvalue()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)
