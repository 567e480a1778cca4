"""``wit search ... --html PATH``: the hits of a search as a grid of the inspect report's cards.

Input: a ``RunData`` of the searched output, the query (text or image path) and the
hits (pipeline/search.py). Output: ``PATH`` and ``<stem>_assets/`` beside it with a
thumbnail per hit (and the query image), written like the inspect report: from
disk, no server. Each card shows the rank and cosine similarity above the usual
caption, CLIP score and links. Web text is escaped by Jinja's autoescape.
"""

from __future__ import annotations

import logging
import os
from typing import Optional, Sequence

import jinja2

from pipeline.report.loader import RunData
from pipeline.report.render_html import _kept_card, _prepare_assets, _Thumbs, _thumbnail, assets_dir_for

log = logging.getLogger(__name__)

TEMPLATE = "search.html.j2"


def _query_thumb(image_path: Optional[str], assets: str) -> Optional[str]:
    if not image_path:
        return None
    with open(image_path, "rb") as fh:
        thumb = _thumbnail(fh.read())
    if thumb is None:
        return None
    with open(os.path.join(assets, "query.jpg"), "wb") as fh:
        fh.write(thumb)
    return f"{os.path.basename(assets)}/query.jpg"


def write_search_report(run: RunData, hits: Sequence, html_path: str, query_text: str = "",
                        query_image: Optional[str] = None, index_method: str = "exact") -> str:
    """Write the page; return the absolute path of the HTML file."""
    html_path = os.path.abspath(html_path)
    os.makedirs(os.path.dirname(html_path), exist_ok=True)
    assets = assets_dir_for(html_path)
    _prepare_assets(assets)
    thumbs = _Thumbs(run, assets)
    thumbs.add([h.row for h in hits])
    cards = []
    for hit in hits:
        card = _kept_card(hit.row, thumbs)
        card["detail"] = f"#{hit.rank} · similarity {hit.similarity:.3f}"
        cards.append(card)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(os.path.dirname(__file__)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    page = env.get_template(TEMPLATE).render(
        cards=cards, query_text=query_text, query_image=query_image, index_method=index_method,
        query_thumb=_query_thumb(query_image, assets), root=run.root, kept=run.stats.get("kept", 0),
        title=os.path.basename(os.path.normpath(run.root)) or run.root)
    tmp = html_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(page)
    os.replace(tmp, html_path)
    log.info("search page written: %s (%d hits)", html_path, len(cards))
    return html_path


__all__ = ["write_search_report"]
