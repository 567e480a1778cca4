"""A loopback HTTP server that misbehaves on purpose (raw sockets, 127.0.0.1, port 0).

Each path is one misbehaviour. Every loop is bounded in time and bytes and ends
when the client goes away, so a test can never hang on it.
"""

from __future__ import annotations

import gzip
import io
import socket
import socketserver
import struct
import threading
import time
import zlib

from PIL import Image

MAX_SECONDS = 8.0  # no handler runs longer than this


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


def _response(status: str, headers: dict, body: bytes = b"", version: str = "HTTP/1.1") -> bytes:
    lines = [f"{version} {status}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _ok(body: bytes, ctype: str = "image/jpeg", extra: dict | None = None) -> bytes:
    headers = {"Content-Type": ctype, "Content-Length": str(len(body)), "Connection": "close"}
    headers.update(extra or {})
    return _response("200 OK", headers, body)


def _redirect(location: str, status: str = "302 Found") -> bytes:
    return _response(status, {"Location": location, "Content-Length": "0", "Connection": "close"})


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(MAX_SECONDS)
        try:
            head = self.request.recv(4096)
            if not head[:1].isalpha():  # not HTTP (a TLS ClientHello): answer as a plain server would
                self.request.sendall(_response("400 Bad Request", {"Content-Length": "0", "Connection": "close"}))
                return
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode("latin-1").split("?")[0]
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
            behaviour = getattr(self.server, "routes").get(path)
            if behaviour is None:
                self.request.sendall(_response("404 Not Found", {"Content-Length": "0", "Connection": "close"}))
            elif callable(behaviour):
                behaviour(self.request, self.server.hits[path])
            else:
                self.request.sendall(behaviour)
        except OSError:
            pass  # the client gave up: exactly what several cases provoke


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


def routes(base: str) -> dict:
    """path -> raw response bytes or a handler(sock, hit_count)."""
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
        "/to-loopback": _redirect("http://127.0.0.1:1/x.jpg"),
        "/to-private": _redirect("http://10.0.0.1/x.jpg"),
        "/to-metadata": _redirect("http://169.254.169.254/latest/meta-data/"),
        "/rate-limited.jpg": _flaky("429 Too Many Requests", {"Retry-After": "1"}),
        "/unavailable.jpg": _flaky("503 Service Unavailable", {}),
        "/private/secret.jpg": _ok(JPEG),
        "/noai.jpg": _ok(JPEG, extra={"X-Robots-Tag": "noai"}),
        "/noimageai.jpg": _ok(JPEG, extra={"X-Robots-Tag": "googlebot: noindex, otherbot: noimageai"}),
        "/huge-headers.jpg": _huge_headers,
        "/reset.jpg": _reset_mid_body,
        "/http10.jpg": _http10,
        "/wrong-charset.jpg": _ok(JPEG, "image/jpeg; charset=utf-16"),
        "/image.svg": _ok(SVG, "image/svg+xml"),
        "/tracker.gif": _ok(TRACKER_GIF, "image/gif"),
        "/cmyk.jpg": _ok(CMYK_JPEG),
        "/animated.gif": _ok(ANIMATED_GIF, "image/gif"),
        "/not-found.jpg": _response("404 Not Found", {"Content-Length": "0", "Connection": "close"}),
    }


class HostileServer:
    """Context manager: ``base_url``, ``hits`` (path -> count), ``exempt`` ("127.0.0.1:PORT")."""

    def __init__(self, robots: bytes | None = None):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.exempt = f"127.0.0.1:{self.port}"
        self.server.hits = {}
        self.server.routes = routes(self.base_url)
        if robots is not None:
            self.server.routes["/robots.txt"] = _ok(robots, "text/plain")
        self.hits = self.server.hits
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "HostileServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
