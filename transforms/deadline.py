"""A total deadline per HTTP request, enforced on the socket (no Beam import).

Input: a deadline (``time.monotonic()`` value) around a request. Output: the
socket the request uses is shut down when the deadline passes, so a blocked
``recv`` returns at once and the caller sees ``Scope.expired``.

Why by hand: ``requests``/urllib3 timeouts bound each socket operation, not
the whole request, so a server that drips one header byte per second (slowloris)
or one body byte per second never times out. No well-kept library adds a wall
clock deadline to a pooled ``requests`` session; the watchdog below does, with
one daemon thread per client and a connection class that tells it which socket
the current thread is waiting on.

The same connection classes make their TCP connections through the SSRF guard
(transforms/ssrf.py) when the adapter is given an ``AddressPolicy``: the address
checked is the address connected to. Proxied requests use urllib3's own proxy
connections (neither the watchdog nor the connect-time guard; see ssrf.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Optional

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from transforms.ssrf import AddressPolicy, guarded

_TICK_S = 0.05


@dataclass
class Scope:
    deadline: float
    sock: Optional[socket.socket] = None
    expired: bool = False


class Watchdog:
    """Shuts down the socket of any request scope whose deadline has passed."""

    def __init__(self) -> None:
        self._scopes: dict[int, Scope] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @contextlib.contextmanager
    def scope(self, deadline: float) -> Iterator[Scope]:
        """Re-entrant per thread: an inner scope shares the outer one's deadline."""
        tid = threading.get_ident()
        with self._lock:
            outer = self._scopes.get(tid)
            if outer is None:
                self._scopes[tid] = Scope(deadline)
                self._ensure_thread()
            current = self._scopes[tid]
        try:
            yield current
        finally:
            if outer is None:
                with self._lock:
                    self._scopes.pop(tid, None)

    def attach(self, sock: Optional[socket.socket]) -> None:
        """Called by the connection: this thread now waits on ``sock``."""
        with self._lock:
            current = self._scopes.get(threading.get_ident())
        if current is None or sock is None:
            return
        current.sock = sock
        if current.expired or time.monotonic() > current.deadline:
            current.expired = True
            _shutdown(sock)

    def close(self) -> None:
        self._stop.set()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="wit-deadline", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(_TICK_S):
            now = time.monotonic()
            with self._lock:
                late = [s for s in self._scopes.values() if not s.expired and now > s.deadline]
                for s in late:
                    s.expired = True
            for s in late:
                if s.sock is not None:
                    _shutdown(s.sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to interrupt


def _watched(base: type) -> type:
    class Watched(base):
        watchdog: Optional[Watchdog] = None

        def getresponse(self, *args, **kwargs):
            if self.watchdog is not None:
                self.watchdog.attach(self.sock)
            return super().getresponse(*args, **kwargs)

    Watched.__name__ = f"Watched{base.__name__}"
    return Watched


class DeadlineAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections report their socket to a Watchdog and, given a
    ``policy``, connect only to addresses the SSRF guard allows."""

    def __init__(self, watchdog: Watchdog, policy: Optional[AddressPolicy] = None, **kwargs):
        self.watchdog, self.policy = watchdog, policy
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        attrs = {"watchdog": self.watchdog, "policy": self.policy}
        http_conn = type("Conn", (_watched(guarded(HTTPConnection)),), attrs)
        https_conn = type("Conns", (_watched(guarded(HTTPSConnection)),), attrs)
        http_pool = type("Pool", (HTTPConnectionPool,), {"ConnectionCls": http_conn})
        https_pool = type("Pools", (HTTPSConnectionPool,), {"ConnectionCls": https_conn})
        self.poolmanager.pool_classes_by_scheme = {"http": http_pool, "https": https_pool}
