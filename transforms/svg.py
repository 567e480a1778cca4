"""Rasterise one SVG safely (``resize.svg: true``): check, clean, render at the target size.

Input: the downloaded bytes of an SVG and a ``ResizeSpec``. Output: ``ResizeResult``
(the same encoded square as a raster image gives; original size = the SVG's intrinsic
size in CSS px), or ``DecodeError`` with ``image.svg_refused`` (not rendered for safety:
entity declarations, too many elements after ``<use>`` expansion, nesting too deep, an
embedded image too large, a render size over the cap, the render over its time or memory
bound, the renderer crashed) or ``image.undecodable`` (not well-formed XML, no ``<svg>``
root, no usable size, the renderer refused it).

Renderer: resvg (Rust, 0.48) through ``resvg-py``: a self-contained abi3 wheel with no
system library (cairosvg needs libcairo, which a fresh CI machine or a Dataflow image may
lack) and renders straight to the requested width/height. Measured by bench/svg_render.py on
600 real SVGs (openclipart, Inkscape tutorials, Adwaita icons; a 2-core machine at load ~23, so
CPU time): ours, check + render + encode, CPU p50 14.8 ms, p99 313 ms, all 600 rendered;
cairosvg 2.9.1 in-process p50 17.4 ms, p99 2,294 ms, 4.3x our total CPU.
Neither survives
hostile input in-process: resvg overflowed its stack on 250 nested groups (SIGSEGV),
aborted the process on an embedded 60000x60000 PNG, and ran past 20 s on a 200-deep blur
chain; cairosvg hit RecursionError, hung on a ``<use>`` bomb and took 10 s on a long path.

Safety, whatever the renderer does:
- Parse first with lxml hardened (``resolve_entities=False``, ``no_network``, no DTD
  loading, libxml2's depth and amplification limits kept: ``huge_tree=False``) and refuse
  any entity declaration or reference. A DOCTYPE with only a public id (Inkscape's,
  Illustrator's without entities) is harmless and dropped.
- Strip every external reference: an ``href`` that is neither ``#fragment`` nor ``data:``,
  CSS ``url()`` that is not ``#fragment``, ``@import``. resvg never fetches URLs, but it
  does read local files named by ``href`` (``/etc/...``, paths relative to the worker's
  directory): measured. Embedded ``data:`` images must be PNG/JPEG/GIF/WebP within
  ``_MAX_EMBEDDED_PIXELS`` (read from the header); an embedded SVG is stripped (it would
  be rendered unchecked).
- The renderer gets the tree lxml checked, serialised again (no parser differential), and
  renders at the target size (``target_size`` of the intrinsic size; ``mode: no`` at most
  ``image_size`` on the long side); never at the declared size.
- Render in a worker process (spawned once, reused) with an address-space limit and a
  wall-clock timeout: a hang, a crash or an allocation abort costs that SVG, not the run.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import math
import os
import re
import select
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from lxml import etree

from pipeline.records import DropReason
from transforms.image_geometry import DecodeError, target_size

log = logging.getLogger(__name__)

SVG_NS = "http://www.w3.org/2000/svg"
MAX_ELEMENTS = 20_000  # after <use> expansion; every real SVG of the bench sample was under it
MAX_DEPTH = 64  # element nesting; resvg crashed at 250 nested groups
MAX_USE_NESTING = 16  # <use> of a <use> of ...
RENDER_TIMEOUT_S = 5.0  # wall clock per SVG in the worker (real SVGs: wall p99 1.5 s at load ~23)
WORKER_MEMORY = 1 << 30  # address space of a render worker, bytes
_STARTUP_TIMEOUT_S = 60.0  # a worker's interpreter start (not an SVG's cost; slow on a loaded machine)
_MAX_EMBEDDED_PIXELS = 4096 * 4096  # a data: image larger than this is refused (decoded at full size)
_MAX_RENDER_PIXELS_FACTOR = 16  # render at most 16 x image_size^2 pixels (keep_ratio of a 1:16 strip)
_EMBEDDED_FORMATS = frozenset({"PNG", "JPEG", "GIF", "WEBP"})
# Fonts resvg falls back to when an SVG's family is missing; without a default, text is not drawn.
_FONTS = {"font_family": "DejaVu Sans", "sans_serif_family": "DejaVu Sans",
          "serif_family": "DejaVu Serif", "monospace_family": "DejaVu Sans Mono"}
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0,
          "em": 16.0, "ex": 8.0}
_LENGTH = re.compile(r"\s*([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in|em|ex|%)?\s*$")
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)""", re.I)
_CSS_IMPORT = re.compile(r"@import[^;]*;?", re.I)
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"


def _refused(detail: str):
    return DecodeError(DropReason.IMAGE_SVG_REFUSED, detail[:200])


def _undecodable(detail: str):
    return DecodeError(DropReason.IMAGE_UNDECODABLE, ("svg: " + detail)[:200])


def looks_like_svg(data: bytes) -> bool:
    """An SVG document by its first bytes (after a BOM, whitespace, an XML declaration or comments)."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<svg") or (head.startswith((b"<?xml", b"<!--", b"<!doctype")) and b"<svg" in head)


@dataclass(frozen=True)
class CleanSvg:
    text: str  # the checked tree, serialised again, external references stripped
    width: float  # intrinsic size, CSS px
    height: float
    stripped: int  # external references removed


# -- checking and cleaning -------------------------------------------------------------


def _parse(data: bytes):
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        text = str(exc)
        if b"<!ENTITY" in data or "amplification" in text:
            raise _refused(f"entities: {text}") from None
        if "depth" in text.lower():  # libxml2's own nesting limit (256 without huge_tree)
            raise _refused(f"nesting: {text}") from None
        raise _undecodable(f"XML: {text}") from None
    except ValueError as exc:  # lxml refuses some inputs (e.g. a str with an encoding declaration)
        raise _undecodable(f"XML: {exc}") from None
    _refuse_entities(root)
    if root.tag == "svg":  # no xmlns (old exporters): the renderer needs SVG's namespace
        for el in root.iter():
            if isinstance(el.tag, str) and not el.tag.startswith("{"):
                el.tag = f"{{{SVG_NS}}}{el.tag}"
        root = etree.fromstring(etree.tostring(root))  # the namespace declared on the root again
    if root.tag != f"{{{SVG_NS}}}svg":
        raise _undecodable(f"root element {str(root.tag)[:80]!r} is not SVG's <svg>")
    return root


def _refuse_entities(root) -> None:
    """Entity declarations (internal or external) in the DOCTYPE, or any entity reference left in
    the tree (``resolve_entities=False`` keeps them as nodes): refused, never expanded."""
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise _refused("entity declarations in the DOCTYPE")
    if any(True for _ in root.iter(etree.Entity)):
        raise _refused("entity reference")


def _check_shape(root) -> dict:
    """Depth and element count; returns {id: element} for <use> expansion."""
    depth, deepest, count, ids = 0, 0, 0, {}
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "end":
            depth -= 1
            continue
        if isinstance(el, etree._Entity):
            raise _refused("entity reference")
        depth += 1
        count += 1
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            raise _refused(f"elements nested over {MAX_DEPTH} deep")
        if count > MAX_ELEMENTS:
            raise _refused(f"over {MAX_ELEMENTS} elements")
        if isinstance(el.tag, str):
            ident = el.get("id")
            if ident:
                ids.setdefault(ident, el)
    return ids


def _href(el) -> str:
    return (el.get(_XLINK_HREF) or el.get("href") or "").strip()


def _expanded_size(root, ids: dict) -> int:
    """Elements the renderer builds once every ``<use>`` is replaced by a copy of its target."""
    memo: dict[str, int] = {}

    def size(el, nesting: int) -> int:
        total = 0
        for node in el.iter():
            total += 1
            if isinstance(node.tag, str) and node.tag == f"{{{SVG_NS}}}use":
                ref = _href(node)
                target = ids.get(ref[1:]) if ref.startswith("#") else None
                if target is not None:
                    total += target_size(ref[1:], target, nesting + 1)
            if total > MAX_ELEMENTS:
                raise _refused(f"over {MAX_ELEMENTS} elements once <use> is expanded")
        return total

    def target_size(ident: str, target, nesting: int) -> int:
        if ident not in memo:
            if nesting > MAX_USE_NESTING:
                raise _refused(f"<use> nested over {MAX_USE_NESTING} deep (or a cycle)")
            memo[ident] = size(target, nesting)
        return memo[ident]

    return size(root, 0)


def _data_uri_bytes(uri: str) -> tuple[str, bytes]:
    head, _, payload = uri[5:].partition(",")
    mime = head.split(";")[0].strip().lower()
    try:
        if head.lower().endswith(";base64"):
            return mime, base64.b64decode(re.sub(r"\s+", "", payload), validate=False)
        return mime, unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        return mime, b""


def _embedded_ok(uri: str) -> bool:
    """A data: image resvg may decode: a raster format within the pixel cap. Raises on a bomb."""
    from PIL import Image

    _mime, raw = _data_uri_bytes(uri)
    try:
        with Image.open(io.BytesIO(raw)) as img:
            fmt, (w, h) = img.format, img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _refused(f"embedded image: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        return False  # an embedded SVG or garbage: stripped
    if fmt not in _EMBEDDED_FORMATS:
        return False
    if w * h > _MAX_EMBEDDED_PIXELS:
        raise _refused(f"embedded {fmt} {w}x{h} over {_MAX_EMBEDDED_PIXELS} pixels")
    return True


def _clean_css(text: str) -> tuple[str, int]:
    """CSS with ``@import`` and every ``url()`` that is not a ``#fragment`` removed."""
    n = 0

    def repl(m):
        nonlocal n
        if m.group(2).strip().startswith("#"):
            return m.group(0)
        n += 1
        return "none"

    text, imports = _CSS_IMPORT.subn("", text)
    return _CSS_URL.sub(repl, text), n + imports


def _strip_references(root) -> int:
    """Remove external references in place; the count removed."""
    stripped = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in list(el.attrib.items()):
            local = name.rpartition("}")[2]
            if local == "href":
                ref = value.strip()
                if ref.startswith("#"):
                    continue
                if ref[:5].lower() == "data:" and _embedded_ok(ref):
                    continue
                del el.attrib[name]
                stripped += 1
            elif "url(" in value.lower() or "@import" in value.lower():
                el.set(name, _clean_css(value)[0])
                stripped += _clean_css(value)[1]
        if el.tag == f"{{{SVG_NS}}}style" and el.text:
            el.text, n = _clean_css(el.text)
            stripped += n
    return stripped


def _length(value, reference):
    """CSS px of an SVG length; ``reference`` for percentages; None when absent or unparsable."""
    m = _LENGTH.match(value or "")
    if not m:
        return None
    number = float(m.group(1))
    if m.group(2) == "%":
        return None if reference is None else number / 100 * reference
    return number * _UNITS[m.group(2) or ""]


def intrinsic_size(root) -> tuple[float, float]:
    """(width, height) in CSS px: width/height, else the viewBox, else 100 (resvg's default)."""
    vb = re.split(r"[\s,]+", (root.get("viewBox") or "").strip())
    vw = vh = None
    if len(vb) == 4:
        try:
            vw, vh = float(vb[2]), float(vb[3])
        except ValueError:
            vw = vh = None
        if vw is not None and not (vw > 0 and vh > 0):
            raise _undecodable(f"viewBox {root.get('viewBox')[:80]!r} has no area")
    w, h = _length(root.get("width"), vw), _length(root.get("height"), vh)
    if w is None and h is None:
        w, h = (vw, vh) if vw and vh else (100.0, 100.0)
    elif w is None:
        w = h * vw / vh if vw and vh else 100.0
    elif h is None:
        h = w * vh / vw if vw and vh else 100.0
    if not (math.isfinite(w) and math.isfinite(h)) or w <= 0 or h <= 0:
        raise _undecodable(f"no usable size (width {root.get('width')!r}, height {root.get('height')!r}, "
                           f"viewBox {root.get('viewBox')!r})")
    return w, h


def clean(data: bytes) -> CleanSvg:
    """Check and clean one SVG (see the module docstring). Raises DecodeError."""
    root = _parse(data)
    ids = _check_shape(root)
    _expanded_size(root, ids)
    w, h = intrinsic_size(root)
    stripped = _strip_references(root)
    # resvg-py refuses some absolute units ("210mm": "invalid size"): the size in px, as computed
    root.set("width", f"{w:.6g}")
    root.set("height", f"{h:.6g}")
    return CleanSvg(etree.tostring(root, encoding="unicode"), w, h, stripped)


def render_size(width: float, height: float, spec) -> tuple[int, int]:
    """The pixel size to render at: the mode's target, never the declared size. A vector has no
    resolution to lose, so ``resize_only_if_bigger`` does not hold it at a small declared size;
    ``mode: no`` renders at the declared size up to ``image_size`` on the long side."""
    import dataclasses

    w, h = max(1, round(width)), max(1, round(height))
    if spec.mode == "no":
        if max(w, h) <= spec.image_size:
            return w, h
        spec = dataclasses.replace(spec, mode="keep_ratio_largest")
    return target_size(w, h, dataclasses.replace(spec, resize_only_if_bigger=False))


# -- the render worker ---------------------------------------------------------------------


_REQUEST = struct.Struct(">III")  # text bytes, width, height
_REPLY = struct.Struct(">BI")  # ok, payload bytes


def _serve(memory: int) -> None:  # pragma: no cover - runs in the worker process (tests drive it)
    """The worker's loop on stdin/stdout: a request in, (ok, PNG bytes or error text) out."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    import resvg_py

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"R")  # ready: the render deadline starts after the interpreter's start-up
    stdout.flush()
    while True:
        head = stdin.read(_REQUEST.size)
        if len(head) < _REQUEST.size:
            return
        size, width, height = _REQUEST.unpack(head)
        text = stdin.read(size).decode("utf-8")
        try:
            ok, payload = 1, bytes(resvg_py.svg_to_bytes(svg_string=text, width=width, height=height, **_FONTS))
        except Exception as exc:  # resvg's parse/render errors arrive as ValueError etc.
            ok, payload = 0, f"{type(exc).__name__}: {exc}"[:300].encode("utf-8", "replace")
        stdout.write(_REPLY.pack(ok, len(payload)) + payload)
        stdout.flush()


class _Worker:
    """One render process (``python -c``, not multiprocessing: no re-import of the caller's
    ``__main__``), reached through pipes. Its address space is capped in the process itself."""

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        self.proc = subprocess.Popen(
            [sys.executable, "-c", f"from transforms.svg import _serve; _serve({WORKER_MEMORY})"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
            cwd=tempfile.gettempdir(), close_fds=True)
        self.ready = False

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.proc.kill()
        self.proc.wait(5)
        self.proc.stdin.close()
        self.proc.stdout.close()

    def _read(self, n: int, deadline: float) -> bytes:
        fd, chunks, got = self.proc.stdout.fileno(), [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, n - got)
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def render(self, text: str, width: int, height: int, timeout: float) -> bytes:
        body = text.encode("utf-8")
        try:
            if not self.ready:
                self.ready = self._read(1, time.monotonic() + _STARTUP_TIMEOUT_S) == b"R"
            deadline = time.monotonic() + timeout
            self.proc.stdin.write(_REQUEST.pack(len(body), width, height) + body)
            self.proc.stdin.flush()
            ok, size = _REPLY.unpack(self._read(_REPLY.size, deadline))
            payload = self._read(size, deadline)
        except TimeoutError:
            self.kill()
            raise _refused(f"render over {timeout:g} s at {width}x{height}") from None
        except (EOFError, OSError):  # BrokenPipeError included: it died
            self.kill()
            raise _refused(f"renderer died (exit {self.proc.returncode}) at {width}x{height}") from None
        if not ok:
            raise _undecodable(f"resvg: {payload.decode('utf-8', 'replace')}")
        return payload


class RenderPool:
    """Render workers shared by a process's threads: one per concurrent render, spawned on demand."""

    def __init__(self):
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def render(self, text: str, width: int, height: int, timeout: float | None = None) -> bytes:
        timeout = RENDER_TIMEOUT_S if timeout is None else timeout
        with self._lock:
            worker = self._idle.pop() if self._idle else None
        worker = worker or _Worker()
        try:
            out = worker.render(text, width, height, timeout)
        except BaseException:
            if worker.alive:
                self._give_back(worker)
            raise
        self._give_back(worker)
        return out

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


POOL = RenderPool()


def rasterise(data: bytes, spec):
    """One SVG rendered: ``(image, render size, declared size)``, which transforms/imaging.py's
    ``finish`` encodes like any raster. Raises DecodeError."""
    from PIL import Image

    svg = clean(data)
    tw, th = render_size(svg.width, svg.height, spec)
    if tw * th > _MAX_RENDER_PIXELS_FACTOR * spec.image_size ** 2:
        raise _refused(f"renders at {tw}x{th}: over {_MAX_RENDER_PIXELS_FACTOR} x {spec.image_size}^2 pixels")
    png = POOL.render(svg.text, tw, th)
    img = Image.open(io.BytesIO(png))
    img.load()
    return img, (tw, th), (round(svg.width) or 1, round(svg.height) or 1)


def renderer_version() -> str:
    """The renderer binding's version (for benches and logs)."""
    from importlib.metadata import version

    return f"resvg-py {version('resvg-py')}"
