"""A loopback HTTP server that misbehaves on purpose (raw sockets, 127.0.0.1, port 0).

Each path is one misbehaviour (tests/transforms/hostile_routes.py: what is sent, and the
tables of them). ``HostileServer`` serves them on port 0. ``CountingListener``: a loopback
port that counts the connections it accepts and the bytes it receives (a guard test
observes real connects, not a patch). ``forbid_off_loopback``: no test packet leaves
loopback, even with a guard switched off.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import threading
import time

# Re-exported: tests import the tables from here.
from tests.transforms.hostile_routes import (BAD_LENGTHS, BAD_REDIRECTS, DISALLOW_OK, HOLD_S, MAX_SECONDS,  # noqa: F401
                                             RGBA16_SIZE, SITE_FILE_ANSWERS, SSRF_REDIRECTS, _ok, _redirect,
                                             _response, routes)

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



class HostileServer:
    """Context manager: ``base_url``, ``hits`` (path -> count), ``exempt`` ("127.0.0.1:PORT")."""

    def __init__(self, robots: bytes | str | None = None, tdmrep: bytes | str | None = None,
                 overrides: dict | None = None):
        """``robots``/``tdmrep``: bodies served (200) at /robots.txt and /.well-known/tdmrep.json,
        or a key of ``SITE_FILE_ANSWERS`` (a robots.txt that 503s, resets, redirects...);
        ``overrides``: path -> raw response bytes or handler(sock, hit), over the default routes."""
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler, bind_and_activate=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.exempt = f"127.0.0.1:{self.port}"
        self.server.hits, self.events = {}, {}
        self.server.routes = routes(self.port, self.events)
        for path, body in (("/robots.txt", robots), ("/.well-known/tdmrep.json", tdmrep)):
            if isinstance(body, str):  # a named answer (SITE_FILE_ANSWERS)
                self.server.routes[path] = SITE_FILE_ANSWERS[body]
            elif body is not None:
                self.server.routes[path] = _ok(body, "text/plain" if path == "/robots.txt" else "application/json")
        self.server.routes.update(overrides or {})
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
