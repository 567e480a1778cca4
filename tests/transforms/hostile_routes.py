"""What the hostile loopback server sends (tests/transforms/hostile_server.py serves it).

``routes(port, events)``: path -> raw response bytes, or a handler(sock, hit count) that
misbehaves on the socket; each is one misbehaviour, every loop bounded in time and bytes
and ending when the client goes away. The tables test_hostile.py builds its cases from:
``SSRF_REDIRECTS`` (redirects to every address form the SSRF guard refuses; numeric
spellings of loopback point back at the server's own port, so even a broken guard stays
on loopback), ``BAD_REDIRECTS`` (Locations that are no URL), ``BAD_LENGTHS``
(Content-Length values that are no ASCII number) and ``SITE_FILE_ANSWERS`` (how a
robots.txt or tdmrep.json can fail or be served).
"""

from __future__ import annotations

import email.utils
import gzip
import io
import socket
import struct
import time
import zlib

from PIL import Image

MAX_SECONDS = 8.0  # no handler runs longer than this
HOLD_S = 3.0  # /noai-held.jpg: the body is held back this long after the headers


def _jpeg(size=(64, 48), colour=(200, 40, 40), mode="RGB") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height, with a tiny IDAT (a decompression bomb shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif(frames=((255, 0, 0), (0, 255, 0)), size=(48, 48)) -> bytes:
    imgs = [Image.new("RGB", size, c) for c in frames]
    buf = io.BytesIO()
    imgs[0].save(buf, format="GIF", save_all=True, append_images=imgs[1:])
    return buf.getvalue()


JPEG = _jpeg()
CMYK_JPEG = _jpeg(mode="CMYK", colour=(0, 255, 255, 0))
TRACKER_GIF = _gif(frames=((0, 0, 0),), size=(1, 1))
ANIMATED_GIF = _gif()
GZIP_BOMB = gzip.compress(b"\x00" * 40_000_000, compresslevel=9)
PNG_BOMB = _png_header_only(30000, 30000)
HUGE_16K = _png_header_only(16384, 16384)
SVG = b'<?xml version="1.0"?><svg width="10" height="10"></svg>'
RGBA16_SIZE = (1200, 1000)  # 1.2 M pixels: test_hostile's tight cap sits either side of it


def _png_rgba16(width: int, height: int) -> bytes:
    """A real 16-bit RGBA PNG (half-transparent gradient rows): decoded, ~8 bytes a pixel."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 16, 6, 0, 0, 0)
    rows = b"".join(b"\x00" + struct.pack(">HHHH", (y * 53) % 65536, 40000, 9000, 32768) * width
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 1))
            + chunk(b"IEND", b""))


RGBA16_PNG = _png_rgba16(*RGBA16_SIZE)


def _response(status: str, headers: dict, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{version} {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _ok(body: bytes, ctype: str = "image/jpeg", extra: dict | None = None) -> bytes:
    headers = {"Content-Type": ctype, "Content-Length": str(len(body)), "Connection": "close"}
    headers.update(extra or {})
    return _response("200 OK", headers, body)


def _raw(status: bytes, header_lines: list, body: bytes = b"") -> bytes:
    """A response whose header lines are bytes as given (non-ASCII, repeated names)."""
    return b"\r\n".join([b"HTTP/1.1 " + status, *header_lines]) + b"\r\n\r\n" + body


def _jpeg_with_length(length: bytes) -> bytes:
    """The JPEG, its Content-Length header the given bytes (connection closed after the body)."""
    return _raw(b"200 OK", [b"Content-Type: image/jpeg", b"Content-Length: " + length, b"Connection: close"], JPEG)


def _redirect(location: str, status: str = "302 Found") -> bytes:
    return _response(status, {"Location": location, "Content-Length": "0", "Connection": "close"})


def _drip(sock, prefix: bytes, unit: bytes, every: float) -> None:
    sock.sendall(prefix)
    end = time.monotonic() + MAX_SECONDS
    while time.monotonic() < end:
        sock.sendall(unit)
        time.sleep(every)


def _slowloris(sock, _hit):
    _drip(sock, b"HTTP/1.1 200 OK\r\n", b"X", 0.1)


def _slow_body(sock, _hit):
    _drip(sock, b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 1000000\r\n\r\n" + JPEG[:100],
          b"\x00" * 10, 0.1)


def _endless(sock, _hit):
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nConnection: close\r\n\r\n" + JPEG[:100])
    end = time.monotonic() + MAX_SECONDS
    block = b"\xff" * 65536
    sent = 0
    while time.monotonic() < end and sent < 200_000_000:
        sock.sendall(block)
        sent += len(block)


def _endless_bad_length(sock, _hit):
    """Content-Length "²" (not a number we read) and a body past the byte cap: still capped."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: \xb2\r\nConnection: close\r\n\r\n"
                 + JPEG[:100])
    end = time.monotonic() + MAX_SECONDS
    block = b"\xff" * 65536
    while time.monotonic() < end:
        sock.sendall(block)


def _always(status: str, extra: dict):
    return _response(status, {"Content-Length": "0", "Connection": "close", **extra})


def _lying_length(sock, _hit):
    sock.sendall(_response("200 OK", {"Content-Type": "image/jpeg", "Content-Length": "100000"}, JPEG[:500]))
    sock.shutdown(socket.SHUT_RDWR)


def _reset_mid_body(sock, _hit):
    sock.sendall(_response("200 OK", {"Content-Type": "image/jpeg", "Content-Length": "50000"}, JPEG[:300]))
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    sock.close()


def _http10(sock, _hit):
    sock.sendall(_response("200 OK", {"Content-Type": "image/jpeg"}, JPEG, version="HTTP/1.0"))
    sock.shutdown(socket.SHUT_RDWR)


def _flaky(first_status: str, extra: dict):
    def handler(sock, hit):
        if hit == 1:
            sock.sendall(_response(first_status, {"Content-Length": "0", "Connection": "close", **extra}))
        else:
            sock.sendall(_ok(JPEG))
    return handler


def _huge_headers(sock, _hit):
    sock.sendall(b"HTTP/1.1 200 OK\r\nX-Junk: " + b"a" * 200_000 + b"\r\n\r\n")


def _noai_held(events: dict):
    """Headers with noai at once, the body only after HOLD_S; ``events`` says whether the client left first."""
    def handler(sock, _hit):
        sock.sendall(_response("200 OK", {"Content-Type": "image/jpeg", "Content-Length": str(len(JPEG)),
                                          "X-Robots-Tag": "noai", "Connection": "close"}))
        sock.settimeout(HOLD_S)
        try:
            closed = sock.recv(1) == b""  # b"": the client closed; a timeout: it waited for the body
        except socket.timeout:
            closed = False
        except OSError:
            closed = True  # reset by the client
        events["/noai-held.jpg"] = "closed before the body" if closed else "body sent"
        if not closed:
            sock.sendall(JPEG)
    return handler


# path -> Location: every form of a refused address (test_hostile.py's CASES name each with its reason).
# {port} is the server's own port: a numeric spelling of loopback that got through would reach it.
SSRF_REDIRECTS = {
    "/to-loopback": "http://127.0.0.1:1/x.jpg",
    "/to-loopback-other": "http://127.0.0.2:{port}/ok.jpg",
    "/to-private": "http://10.0.0.1/x.jpg",
    "/to-private-172": "http://172.16.0.1/x.jpg",
    "/to-private-192": "http://192.168.1.1/x.jpg",
    "/to-metadata": "http://169.254.169.254/latest/meta-data/",
    "/to-shared-space": "http://100.64.0.1/x.jpg",
    "/to-shared-metadata": "http://100.100.100.200/latest/meta-data/",
    "/to-this-network": "http://0.1.2.3/x.jpg",
    "/to-unspecified": "http://0.0.0.0:{port}/ok.jpg",
    "/to-broadcast": "http://255.255.255.255/x.jpg",
    "/to-reserved": "http://240.0.0.1/x.jpg",
    "/to-multicast": "http://224.0.0.1/x.jpg",
    "/to-benchmarking": "http://198.18.0.1/x.jpg",
    "/to-documentation": "http://192.0.2.1/x.jpg",
    "/to-ietf-assignments": "http://192.0.0.170/x.jpg",
    "/to-6to4-relay": "http://192.88.99.1/x.jpg",
    "/to-decimal": "http://2130706433:{port}/ok.jpg",
    "/to-hex": "http://0x7f.1:{port}/ok.jpg",
    "/to-hex-whole": "http://0x7f000001:{port}/ok.jpg",
    "/to-octal": "http://0177.0.0.1:{port}/ok.jpg",
    "/to-short": "http://127.1:{port}/ok.jpg",
    "/to-localhost": "http://localhost:{port}/ok.jpg",
    "/to-uppercase-localhost": "http://LOCALHOST:{port}/ok.jpg",
    "/to-userinfo": "http://example.com@169.254.169.254/latest/meta-data/",
    "/to-scheme-relative": "//10.0.0.1/x.jpg",
    "/to-ipv6-loopback": "http://[::1]:{port}/ok.jpg",
    "/to-ipv6-unspecified": "http://[::]:{port}/ok.jpg",
    "/to-mapped": "http://[::ffff:127.0.0.1]:{port}/ok.jpg",
    "/to-mapped-hex": "http://[::ffff:7f00:1]:{port}/ok.jpg",
    "/to-mapped-metadata": "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "/to-compatible": "http://[::127.0.0.1]:{port}/ok.jpg",
    "/to-nat64": "http://[64:ff9b::7f00:1]/x.jpg",
    "/to-nat64-metadata": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "/to-nat64-local": "http://[64:ff9b:1::a00:1]/x.jpg",
    "/to-6to4-loopback": "http://[2002:7f00:1::1]/x.jpg",
    "/to-6to4-private": "http://[2002:c0a8:101::1]/x.jpg",
    "/to-teredo-client": "http://[2001:0:808:808:0:0:80ff:fffe]/x.jpg",  # client 127.0.0.1 (obfuscated)
    "/to-teredo-server": "http://[2001:0:a00:1:0:0:f7f7:fbfb]/x.jpg",  # server 10.0.0.1
    "/to-site-local": "http://[fec0::1]/x.jpg",
    "/to-unique-local": "http://[fd00::1]/x.jpg",
    "/to-ipv6-metadata": "http://[fd00:ec2::254]/latest/meta-data/",
    "/to-ipv6-link-local": "http://[fe80::1]/x.jpg",
    "/to-ipv6-multicast": "http://[ff02::1]/x.jpg",
    "/to-ipv6-documentation": "http://[2001:db8::1]/x.jpg",
    "/to-ipv6-discard": "http://[100::1]/x.jpg",
}
# Locations that are not URLs we may fetch: bad_url, never a ValueError.
BAD_REDIRECTS = {
    "/to-bad-ipv6": "http://[::1",
    "/to-bad-ipv6-host": "http://[oops/x.jpg",
    "/to-bad-port": "http://127.0.0.1:99999/x.jpg",
    "/to-file": "file:///etc/passwd",
    "/to-gopher": "gopher://127.0.0.1:{port}/_x",
    "/to-bad-ipv6-userinfo": "http://user:pw@[::1/x.jpg",
    "/to-bad-ipv6-nested": "http://[[::1]]/x.jpg",
    "/to-ipv4-in-brackets": "http://[127.0.0.1]/x.jpg",
    "/to-bad-ipv6-port": "http://[::1]:abc/x.jpg",
}

# Numbers a server may send that are not ASCII digits (or not one number): read as undeclared.
# Each path serves the JPEG with that Content-Length, the connection closed after the body.
BAD_LENGTHS = {
    "/length-superscript.jpg": b"\xb2",  # "²" (latin-1 on the wire): isdigit() is True, int() raises
    "/length-superscript-3.jpg": b"\xb3\xb9",  # "³¹"
    "/length-fullwidth.jpg": "１２".encode("utf-8"),  # read as latin-1 mojibake
    "/length-arabic-indic.jpg": "١٢٣".encode("utf-8"),  # int("١٢٣") == 123 where it arrives as text
    "/length-negative.jpg": b"-1",
    "/length-float.jpg": b"1e3",
    "/length-hex.jpg": b"0x10",
    "/length-garbage.jpg": b"banana",
    "/length-empty.jpg": b"",
    "/length-spaces-inside.jpg": b"1 0 0",
    "/length-nul.jpg": b"1\x000",
}


def _reset_at_once(sock, _hit):
    """Accept, read the request, then reset the connection: no response at all."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _silent(sock, _hit):
    """Never answer; return when the client gives up (or after MAX_SECONDS)."""
    try:
        sock.recv(1)
    except OSError:
        pass


def _gzip_ok(body: bytes, ctype: str = "text/plain") -> bytes:
    return _ok(gzip.compress(body, compresslevel=9), ctype, extra={"Content-Encoding": "gzip"})


DISALLOW_OK = b"User-agent: *\nDisallow: /ok.jpg\n"

# How a robots.txt (or tdmrep.json) can be had or fail to be; test_hostile's SITE_CASES name
# them. A 5xx, a 429 or no answer is RFC 9309's "unreachable" (complete disallow); a 4xx "none".
SITE_FILE_ANSWERS = {
    "503": _always("503 Service Unavailable", {}),
    "500": _always("500 Internal Server Error", {}),
    "429": _always("429 Too Many Requests", {"Retry-After": "1"}),
    "404": _always("404 Not Found", {}),
    "403": _always("403 Forbidden", {}),
    "401": _always("401 Unauthorized", {}),
    "reset": _reset_at_once,
    "silent": _silent,
    "garbage-status": b"HTTP/1.1 abc nonsense\r\n\r\n",
    "not-http": b"\x00\x01\x02 this is no HTTP response\r\n\r\n",
    "redirect-private": _redirect("http://10.0.0.1/robots.txt"),
    "redirect-bad-ipv6": _redirect("http://[::1/robots.txt"),
    "redirect-loop": _redirect("/robots.txt"),
    "redirect-chain": _redirect("/chain0"),  # 12 more hops: past the 5 RFC 9309 asks us to follow
    "redirect-elsewhere": _redirect("/real-robots.txt"),  # serves DISALLOW_OK
    # gzip on the wire (Accept-Encoding: identity notwithstanding), inflating to 2 MB
    "gzip-inflating": _gzip_ok(DISALLOW_OK + b"# " + b"x" * 2_000_000 + b"\n"),
}


def routes(port: int, events: dict) -> dict:
    """path -> raw response bytes or a handler(sock, hit_count); handlers note what they saw in ``events``."""
    chain = {f"/chain{i}": _redirect(f"/chain{i + 1}") for i in range(12)}
    return {
        "/robots.txt": _ok(b"User-agent: *\nDisallow: /private/\n", "text/plain"),
        "/ok.jpg": _ok(JPEG),
        "/slowloris": _slowloris,
        "/slow-body.jpg": _slow_body,
        "/endless.jpg": _endless,
        "/lying-length.jpg": _lying_length,
        "/gzip-bomb.jpg": _ok(GZIP_BOMB, extra={"Content-Encoding": "gzip"}),
        "/png-bomb.png": _ok(PNG_BOMB, "image/png"),
        "/huge-16k.png": _ok(HUGE_16K, "image/png"),
        "/truncated.jpg": _ok(JPEG[: len(JPEG) // 3]),
        "/html-as-jpeg.jpg": _ok(b"<!doctype html><html><body>Not found</body></html>"),
        "/polyglot.jpg": _ok(b"\xff\xd8\xff\xe0" + b"<script>alert(1)</script>" * 20),
        "/zero-byte.jpg": _ok(b""),
        "/loop": _redirect("/loop"),
        **chain,
        **{path: _redirect(location.format(port=port)) for path, location in SSRF_REDIRECTS.items()},
        **{path: _redirect(location.format(port=port)) for path, location in BAD_REDIRECTS.items()},
        "/noai-held.jpg": _noai_held(events),
        "/rate-limited.jpg": _flaky("429 Too Many Requests", {"Retry-After": "1"}),
        "/unavailable.jpg": _flaky("503 Service Unavailable", {}),
        "/private/secret.jpg": _ok(JPEG),
        "/noai.jpg": _ok(JPEG, extra={"X-Robots-Tag": "noai"}),
        # Scoped to our user agent's product token (tests use "wit-curator-test"); otherbot's is not for us.
        "/noimageai.jpg": _ok(JPEG, extra={"X-Robots-Tag": "googlebot: noindex, wit-curator-test: noimageai"}),
        "/noai-for-otherbot.jpg": _ok(JPEG, extra={"X-Robots-Tag": "otherbot: noai"}),
        "/huge-headers.jpg": _huge_headers,
        "/reset.jpg": _reset_mid_body,
        "/http10.jpg": _http10,
        "/wrong-charset.jpg": _ok(JPEG, "image/jpeg; charset=utf-16"),
        "/image.svg": _ok(SVG, "image/svg+xml"),
        "/tracker.gif": _ok(TRACKER_GIF, "image/gif"),
        "/cmyk.jpg": _ok(CMYK_JPEG),
        "/animated.gif": _ok(ANIMATED_GIF, "image/gif"),
        "/not-found.jpg": _response("404 Not Found", {"Content-Length": "0", "Connection": "close"}),
        **{path: _jpeg_with_length(value) for path, value in BAD_LENGTHS.items()},
        "/length-superscript-endless.jpg": _endless_bad_length,  # the byte cap still holds
        "/length-plus.jpg": _jpeg_with_length(b"+100"),  # int() reads 100: the JPEG is cut
        "/length-underscore.jpg": _jpeg_with_length(b"1_00"),  # int("1_00") == 100 too
        "/length-conflicting.jpg": _jpeg_with_length(b"100, 200"),  # RFC 9110 §8.6: no framing to trust
        "/length-huge.jpg": _jpeg_with_length(b"9" * 40),  # over any cap: refused before the body
        "/length-over-cap.jpg": _jpeg_with_length(b"3000000"),
        "/length-repeated-same.jpg": _jpeg_with_length(str(len(JPEG)).encode() + b", " + str(len(JPEG)).encode()),
        "/retry-after-superscript.jpg": _flaky("429 Too Many Requests", {"Retry-After": "\xb2"}),
        "/retry-after-garbage.jpg": _flaky("503 Service Unavailable", {"Retry-After": "soon"}),
        "/retry-after-negative.jpg": _flaky("503 Service Unavailable", {"Retry-After": "-5"}),
        "/retry-after-bad-date.jpg": _flaky("503 Service Unavailable",
                                            {"Retry-After": "Fri, 99 Foo 99999 99:99:99 GMT"}),
        "/retry-after-superscript-always.jpg": _always("503 Service Unavailable", {"Retry-After": "\xb2"}),
        "/tdm-reserved.jpg": _ok(JPEG, extra={"tdm-reservation": "1"}),
        "/tdm-reserved-policy.jpg": _ok(JPEG, extra={"TDM-Reservation": "1", "tdm-policy": "https://example.com/p"}),
        "/tdm-not-reserved.jpg": _ok(JPEG, extra={"tdm-reservation": "0"}),
        "/tdm-superscript.jpg": _ok(JPEG, extra={"tdm-reservation": "\xb9"}),  # "¹" is not 1
        "/noai-for-us.jpg": _ok(JPEG, extra={"X-Robots-Tag": "wit-curator-test: noai"}),
        "/noai-for-us-uppercase.jpg": _ok(JPEG, extra={"X-Robots-Tag": "WIT-Curator-Test: NOAI"}),
        "/noai-in-second-header.jpg": _raw(b"200 OK", [
            b"Content-Type: image/jpeg", b"Content-Length: " + str(len(JPEG)).encode(), b"Connection: close",
            b"X-Robots-Tag: otherbot: noindex", b"X-Robots-Tag: noai"], JPEG),
        "/noai-for-otherbot-then-us-index.jpg": _ok(JPEG, extra={
            "X-Robots-Tag": "otherbot: noai, wit-curator-test: index"}),
        "/rgba16.png": _ok(RGBA16_PNG, "image/png"),
        "/real-robots.txt": _ok(DISALLOW_OK, "text/plain"),
        "/retry-after-huge.jpg": _always("429 Too Many Requests", {"Retry-After": "100000"}),
        "/retry-after-many-digits.jpg": _always("503 Service Unavailable", {"Retry-After": "9" * 30}),
        "/retry-after-next-year.jpg": _always("503 Service Unavailable", {
            "Retry-After": email.utils.formatdate(time.time() + 365 * 86400, usegmt=True)}),
    }
