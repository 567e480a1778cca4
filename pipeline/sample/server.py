"""A loopback HTTP server for a ``SampleSite``.

Input: a ``SampleSite``. Output: its resources over real HTTP on 127.0.0.1 (port 0,
so tests never collide): GET and HEAD by path (query strings ignored), the stored
status and headers, ``Content-Length`` always set, 404 for unknown paths. One
thread per connection, ``Connection: close`` after each response, so ``stop()``
leaves no threads behind. No drop reasons: the pipeline decides those.
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import unquote, urlsplit

from pipeline.sample.site import Resource, SampleSite

logger = logging.getLogger(__name__)

_NOT_FOUND = Resource(404, (("Content-Type", "text/html; charset=utf-8"),),
                      b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>")
_JOIN_TIMEOUT_S = 5.0


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.site.resources``; one request per connection (HTTP/1.0 semantics)."""

    server_version = "SampleWeb/1.0"
    timeout = 10  # seconds a silent client may hold a handler thread

    def _resource(self) -> Resource:
        path = urlsplit(self.path).path or "/"
        resources = self.server.site.resources  # type: ignore[attr-defined]
        return resources.get(path) or resources.get(unquote(path)) or _NOT_FOUND

    def _respond(self, with_body: bool) -> None:
        res = self._resource()
        try:
            self.send_response(res.status)
            for name, value in res.headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(res.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if with_body and res.body:
                self.wfile.write(res.body)
        except (BrokenPipeError, ConnectionResetError) as exc:  # the client went away: its problem
            logger.debug("client %s disconnected: %s", self.client_address, exc)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._respond(with_body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._respond(with_body=False)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (signature from the base class)
        logger.debug("%s - " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    """Threading server that remembers its handler threads so ``stop()`` can join them."""

    daemon_threads = True
    request_queue_size = 256  # many clients connect at once; the default backlog of 5 drops SYNs
    allow_reuse_address = True

    def __init__(self, address, site: SampleSite):
        self.site = site
        self._handlers: set[threading.Thread] = set()
        self._lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self._run_request, args=(request, client_address),
                                  name="SampleServer-request", daemon=True)
        with self._lock:
            self._handlers.add(thread)
        thread.start()

    def _run_request(self, request, client_address) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._lock:
                self._handlers.discard(threading.current_thread())

    def join_handlers(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._handlers)
        for thread in threads:
            thread.join(timeout)


class SampleServer:
    """Serve a ``SampleSite`` on 127.0.0.1 in a background thread.

    ``with SampleServer(site) as server: requests.get(server.seed_urls[0])``
    """

    def __init__(self, site: SampleSite, host: str = "127.0.0.1", port: int = 0):
        self.site = site
        self._address = (host, port)
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._server is None:
            raise RuntimeError("SampleServer is not running; call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def seed_urls(self) -> list[str]:
        return [self.url(path) for path in self.site.seed_paths]

    def url(self, path: str) -> str:
        """The absolute URL of a site path such as ``/index.html``."""
        return self.base_url + path

    def start(self) -> "SampleServer":
        if self._server is not None:
            return self
        self._server = _Server(self._address, self.site)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="SampleServer", daemon=True)
        self._thread.start()
        logger.debug("sample web serving %d resources at %s", len(self.site.resources), self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait for in-flight requests. Idempotent."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._server, self._thread = None, None
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(_JOIN_TIMEOUT_S)
        server.join_handlers(_JOIN_TIMEOUT_S)

    def __enter__(self) -> "SampleServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


__all__ = ["SampleServer"]
