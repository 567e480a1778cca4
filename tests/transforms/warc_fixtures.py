"""Build small WARC, WAT and ARC files for the tests (Common Crawl's record shapes; ARC v1 as the
Internet Archive wrote it, read by warcio's ARC reader)."""

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

    def metadata(self, url: str, payload: bytes) -> "ArchiveBuilder":
        """A metadata record with any payload, typed as a WAT one (application/json)."""
        self._write(self.writer.create_warc_record(url, "metadata", payload=io.BytesIO(payload),
                                                   warc_content_type="application/json"))
        return self

    def getvalue(self) -> bytes:
        return self.buf.getvalue()


def gzipped(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64"/></svg>'
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64)


def http_response(body: bytes, content_type: str = "text/html", status: int = 200, extra_headers=()) -> bytes:
    reason = {200: "OK", 404: "Not Found"}.get(status, "X")
    head = [f"HTTP/1.0 {status} {reason}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}",
            *(f"{k}: {v}" for k, v in extra_headers)]
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class ArcBuilder:
    """An ARC v1 file: the ``filedesc://`` version block, then one block per record, each
    ``URL IP-address Archive-date Content-type Archive-length`` + the HTTP response + a newline;
    ``gzip_records`` compresses every block as its own gzip member (``.arc.gz``)."""

    SPEC = b"1 0 wit-curator tests\nURL IP-address Archive-date Content-type Archive-length\n"

    def __init__(self, gzip_records: bool = True, name: str = "test.arc"):
        self.gzip_records = gzip_records
        self.blocks = [b"filedesc://%s 0.0.0.0 20040101000000 text/plain %d\n" % (name.encode(), len(self.SPEC))
                       + self.SPEC + b"\n"]

    def response(self, url: str, body: bytes, content_type: str = "text/html", status: int = 200,
                 date: str = "20040518015810", extra_headers=(), ip: str = "192.0.2.1") -> "ArcBuilder":
        http = http_response(body, content_type, status, extra_headers)
        self.blocks.append(f"{url} {ip} {date} {content_type} {len(http)}\n".encode("latin-1") + http + b"\n")
        return self

    def getvalue(self) -> bytes:
        return b"".join(gzipped(b) if self.gzip_records else b for b in self.blocks)
