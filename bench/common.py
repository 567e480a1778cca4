"""Helpers shared by the benches: photo-like JPEGs, an in-memory loopback server, a
loopback server that synthesises a distinct JPEG per URL, and running a command while
sampling the RSS of its whole process tree.

Benches run the tool a user would otherwise pick beside ours, in the same run,
and print the ratio. Servers bind 127.0.0.1 on port 0 only.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_work")


def photo_like(rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """Smooth colour fields plus texture: compresses and decodes like a photo, not a flat card."""
    low = rng.random((max(2, height // 64), max(2, width // 64), 3)).astype(np.float32)
    base = np.asarray(Image.fromarray((low * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC),
                      dtype=np.float32)
    texture = rng.normal(0, 18, (height, width, 1)).astype(np.float32)
    return Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))


def make_jpegs(directory: str, n: int, seed: int = 0, sizes=(300, 1200), quality: int = 90) -> list[str]:
    """``n`` photo-like JPEGs (each side in ``sizes``), written once and reused."""
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for i in range(n):
        name = f"img{i:05d}.jpg"
        w, h = (int(v) for v in rng.integers(sizes[0], sizes[1] + 1, size=2))
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            buf = io.BytesIO()
            photo_like(rng, w, h).save(buf, format="JPEG", quality=quality)
            with open(path + ".tmp", "wb") as fh:
                fh.write(buf.getvalue())
            os.replace(path + ".tmp", path)
        names.append(name)
    return names


def url_jpeg(key: str, sides=(160, 320), quality: int = 85) -> bytes:
    """A photo-like JPEG that is a pure function of ``key`` (a URL path and query).

    Each side in ``sides``. An 8x8 grid of random brightness (what the greyscale pHash
    sees) and random chroma, mostly one tint per quarter (what the colour signature
    sees), bicubic-upscaled, plus pixel noise so the bytes compress like a photo. Both
    are drawn afresh for every key, so two keys are almost never near-duplicates in the
    pipeline's sense (pHash within 8 bits *and* quarter colours within 20): among 20,000
    keys 148 pairs were within 8 bits, none of them also within the colour delta. A
    tint per quarter in *luminance* would have made that 6,702 pairs (the quarters
    dominate the hash). ~20 KB and ~3 ms per image.
    """
    seed = int.from_bytes(hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    w, h = (int(v) for v in rng.integers(sides[0], sides[1] + 1, size=2))
    luma = rng.random((8, 8, 1))
    chroma = 0.6 * np.kron(rng.random((2, 2, 2)), np.ones((4, 4, 1))) + 0.4 * rng.random((8, 8, 2))
    low = Image.frombytes("YCbCr", (8, 8), (np.concatenate([luma, chroma], axis=2) * 255).astype(np.uint8).tobytes())
    base = np.asarray(low.convert("RGB").resize((w, h), Image.BICUBIC), dtype=np.int16)
    noise = rng.integers(-16, 17, (h, w, 1), dtype=np.int16)
    buf = io.BytesIO()
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        body = self.server.files.get(self.path.split("?")[0].lstrip("/"))
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FileServer:
    """Serves a directory's files from memory on 127.0.0.1 (keep-alive, threaded)."""

    def __init__(self, directory: str):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 512
        self.server.files = {n: open(os.path.join(directory, n), "rb").read() for n in os.listdir(directory)}
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


class _SynthHandler(_Handler):
    def do_GET(self):  # noqa: N802
        if not self.path.startswith("/img/"):
            return super().do_GET()  # server.files is empty: a 404 (robots.txt, tdmrep.json)
        body = url_jpeg(self.path, self.server.sides)
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class SynthImageServer(FileServer):
    """Serves ``/img/<anything>`` on 127.0.0.1 as ``url_jpeg(path and query)``: every URL its own image.

    Nothing is stored: a refetch of a URL gets the same bytes, and memory stays flat
    however many URLs are asked for. Other paths are 404.
    """

    def __init__(self, sides=(160, 320)):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _SynthHandler)
        self.server.daemon_threads = True
        self.server.request_queue_size = 512
        self.server.files = {}
        self.server.sides = tuple(sides)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


def _tree_rss_bytes(root: int) -> int:
    """Sum of RSS over ``root`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


@dataclass
class RunResult:
    seconds: float
    peak_rss_mb: float
    returncode: int
    output: str


def run_measured(cmd: list[str], env: dict | None = None, timeout: float = 1800) -> RunResult:
    """Run ``cmd``; wall time and the peak summed RSS of its process tree (sampled every 0.1 s)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    peak = 0
    out_chunks: list[str] = []
    reader = threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss_bytes(proc.pid))
        if time.monotonic() - start > timeout:
            proc.kill()
        time.sleep(0.1)
    reader.join(timeout=5)
    return RunResult(time.monotonic() - start, peak / 2**20, proc.returncode, "".join(out_chunks))
