"""HTML pages of the sample web: navigation links and ``<img>`` markup.

Input: the site's page paths, a page index, the ``PlacedImage`` records of that page
and the site generator's ``random.Random`` (section headings and filler text are drawn
from it, so the caller's draw sequence, and with it the whole site, stays deterministic).
Output: the page's HTML as ASCII bytes. No drop reasons: the pages link the site
together (a depth-2 tree plus a prev/next chain, a dead ``/pages/missing.html`` link and
an off-site link), and the expected outcome of each image lives in the manifest.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:  # site.py imports this module; the type is only named here
    from pipeline.sample.site import ManifestEntry


@dataclass(frozen=True)
class PlacedImage:
    """An ``<img>`` waiting to be written into its page."""

    entry: ManifestEntry
    alt: Optional[str]  # None: no alt attribute
    figcaption: str = ""  # non-empty: wrapped in <figure>
    link: str = ""  # non-empty: wrapped in <a href>


_TOPICS = ("Circles and curves", "Primary colours", "Stars at night", "Plus signs", "Warm tones",
           "Cool tones", "Geometry for beginners", "Flat design", "Hard edges", "Bold contrasts")
_SENTENCES = ("These pieces come from our weekly shape studies.", "Every print is made by hand.",
              "Colour is the first thing the eye notices.", "Simple forms read well at any size.",
              "Readers sent us many of the works below.", "We rotate the collection every season.",
              "Contrast between figure and ground keeps each piece legible.")


def _gallery(j: int) -> str:
    return f"Gallery {j + 1:02d}"


def _page_links(pages: list[str], i: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(nav links, related links) of page ``i``: a tree of depth 2 plus a prev/next chain."""
    n = len(pages) - 1
    k = max(1, math.ceil(math.sqrt(n)))  # k pages at depth 1, the rest at depth 2
    if i == 0:
        related = [(pages[j + 1], _gallery(j)) for j in range(min(k, n))]
        return [("/index.html", "Home"), ("/pages/missing.html", "Archive")], related
    j = i - 1
    nav = [("/index.html", "Home")]
    if j > 0:
        nav.append((pages[i - 1], "Previous"))
    if j < n - 1:
        nav.append((pages[i + 1], "Next"))
    if j % 7 == 3:
        nav.append(("/pages/missing.html", "Archive"))  # a dead link: crawl.http_4xx, not a pair
    parent = 0 if j < k else (j - k) % k + 1
    related = [(pages[parent], "Back to " + ("the front page" if parent == 0 else _gallery(parent - 1)))]
    related += [(pages[m + 1], _gallery(m)) for m in range(k, n) if (m - k) % k == j]
    return nav, related


def _img_html(img: PlacedImage) -> str:
    attrs = f'src="{escape(img.entry.image_path)}"'
    if img.alt is not None:
        attrs += f' alt="{escape(img.alt)}"'
    tag = f"<img {attrs} loading=\"lazy\">"
    if img.link:
        tag = f'<a href="{escape(img.link)}">{tag}</a>'
    if img.figcaption:
        return f"<figure>{tag}<figcaption>{escape(img.figcaption)}</figcaption></figure>"
    return f"<p>{tag}</p>"


def render_page(pages: list[str], i: int, placed: list[PlacedImage], rng: random.Random) -> bytes:
    """The HTML of page ``i`` (ASCII bytes: other characters as numeric references)."""
    title = "Sample Web: shapes and colours"
    if i:
        title = f"{_gallery(i - 1)}: {_TOPICS[(i - 1) % len(_TOPICS)]}"
    nav, related = _page_links(pages, i)
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head>', '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{escape(title)}</title>", "</head>", "<body>", f"<header><h1>{escape(title)}</h1>",
           "<nav><ul>" + "".join(f'<li><a href="{h}">{t}</a></li>' for h, t in nav) + "</ul></nav>",
           "</header>", "<main>"]
    start = 0
    while start < len(placed):
        stop = start + rng.randint(3, 5)
        out.append(f"<section><h2>{escape(rng.choice(_TOPICS))}</h2>")
        out.append(f"<p>{' '.join(rng.sample(_SENTENCES, 2))}</p>")
        out.extend(_img_html(img) for img in placed[start:stop])
        out.append("</section>")
        start = stop
    out.append("<section><h2>More galleries</h2><ul>")
    out.extend(f'<li><a href="{h}">{escape(t)}</a></li>' for h, t in related)
    # An off-site link: a same-host crawl must not follow it (there is no internet in tests).
    footer = '<footer><p>&copy; 2024 Sample Web. <a href="https://example.com/about">About</a></p></footer>'
    out += ["</ul></section>", "</main>", footer, "</body>", "</html>", ""]
    return "\n".join(out).encode("ascii", "xmlcharrefreplace")


__all__ = ["PlacedImage", "render_page"]
