"""A loopback HTTP server that misbehaves on purpose (raw sockets, 127.0.0.1, port 0).

Each path is one misbehaviour. Every loop is bounded in time and bytes and ends
when the client goes away, so a test can never hang on it. ``SSRF_REDIRECTS``:
redirects to every address form the SSRF guard refuses (the numeric spellings
point back at this server's own port, so even a broken guard stays on loopback).
``CountingListener``: a loopback port that counts the connections it accepts
and the bytes it receives (a guard test observes real connects, not a patch).
"""

from __future__ import annotations

import gzip
import io
import ipaddress
import socket
import socketserver
import struct
import threading
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
            if path.startswith("http://"):  # asked as a forward proxy: serve the path as if it were ours
                path = "/" + path[len("http://"):].partition("/")[2]
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
    }


class HostileServer:
    """Context manager: ``base_url``, ``hits`` (path -> count), ``exempt`` ("127.0.0.1:PORT")."""

    def __init__(self, robots: bytes | None = None):
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.exempt = f"127.0.0.1:{self.port}"
        self.server.hits, self.events = {}, {}
        self.server.routes = routes(self.port, self.events)
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

    def redirect(self, path: str, location: str) -> None:
        """Serve a redirect to ``location`` at ``path`` from now on."""
        self.server.routes[path] = _redirect(location)


class CountingListener:
    """A loopback port (127.0.0.1, port 0) that accepts, counts and reads whatever connects.

    ``settle()`` waits until no connection has arrived for a while and returns
    (connections accepted, bytes received): a connect the guard should have
    refused shows here even if the client gave up at once."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted, self.received = 0, 0
        self._lock, self._stop = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(1.0)
        try:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                with self._lock:
                    self.received += len(chunk)
        except OSError:
            pass
        finally:
            conn.close()

    def settle(self, quiet_s: float = 0.3) -> tuple[int, int]:
        time.sleep(quiet_s)
        with self._lock:
            return self.accepted, self.received

    def __enter__(self) -> "CountingListener":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self.thread.join(1.0)
        self.sock.close()


def _loopback(address) -> bool:
    try:
        ip = ipaddress.ip_address(str(address[0]).split("%", 1)[0])
    except (ValueError, IndexError, TypeError):
        return False
    return ip.is_loopback or (ip.version == 6 and ip.ipv4_mapped is not None and ip.ipv4_mapped.is_loopback)


def forbid_off_loopback(monkeypatch) -> list:
    """Make every socket connect to a non-loopback address fail (ENETUNREACH), recording it.

    Tests that misdirect the client (redirects to 10.0.0.1, a rebinding DNS answer)
    run under this, so no packet leaves 127.0.0.0/8 or ::1 even with a guard off."""
    attempts: list = []

    def refusing(real):
        def connect(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
                attempts.append(address)
                raise OSError(101, f"test: {address!r} is not loopback")
            return real(sock, address)
        return connect

    monkeypatch.setattr(socket.socket, "connect", refusing(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", refusing(socket.socket.connect_ex))
    return attempts
