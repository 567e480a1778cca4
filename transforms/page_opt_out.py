"""Opt-outs a page declares in its markup: ``noai`` robots meta tags and TDMRep (no Beam import).

Input: a parsed page (lxml document) or its ``(name, content)`` meta pairs, our
user-agent token and whether TDMRep is respected. Output: ``None`` (the page may be
used), or ``(reason, detail)`` that ExtractAltText gives every pair of the page:

- ``extract.page_noai``: a ``<meta name="robots">`` or ``<meta name="<our token>">``
  (the product token of ``fetch.user_agent``: ``wit-curator``) whose content lists
  ``noai`` or ``noimageai`` (any case, comma or space separated, any of several tags).
  A meta named for another bot (``googlebot``) is that bot's business, not ours.
- ``extract.tdm_reserved`` (when ``fetch.respect_tdmrep``): ``<meta name="tdm-reservation"
  content="1">`` (W3C TDMRep community spec); the detail names the ``tdm-policy`` when
  the page gives one.

``noai`` wins when a page says both. ``may_opt_out`` is a bytes pre-check over the
``<meta`` tags: most pages declare neither, and they skip the tree walk.
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

from pipeline.records import DropReason

NOAI_TOKENS = frozenset({"noai", "noimageai"})
_SPLIT = re.compile(r"[\s,]+")
_MAX_METAS = 4096  # meta tags looked at on one page (a hostile page may hold millions)
_MAX_PRECHECK_METAS = 512
_DETAIL_CHARS = 200

Verdict = Optional[tuple[DropReason, str]]


def user_agent_token(user_agent: str) -> str:
    """The product token a robots meta may name us by: ``"wit-curator/0.1 (+url)"`` -> ``"wit-curator"``."""
    return (user_agent or "").split("/", 1)[0].strip().lower()


def may_opt_out(lowered: bytes, respect_tdmrep: bool) -> bool:
    """Can ``page_opt_out`` find anything in these lower-cased page bytes? One scan for ``<meta``
    and a look inside each tag: three scans of the whole page for the words cost 5% of extraction."""
    start, seen = lowered.find(b"<meta"), 0
    while start >= 0:
        seen += 1
        if seen > _MAX_PRECHECK_METAS:
            return True  # a page of endless metas: let the (bounded) tree walk decide
        end = lowered.find(b">", start)
        tag = lowered[start:end if end >= 0 else len(lowered)]
        if b"noai" in tag or b"noimageai" in tag or (respect_tdmrep and b"tdm-reservation" in tag):
            return True
        if end < 0:
            return False
        start = lowered.find(b"<meta", end)
    return False


def noai_directives(content: str) -> set:
    """The ``noai``/``noimageai`` directives a robots meta's content lists."""
    return NOAI_TOKENS.intersection(_SPLIT.split(content.lower()))


def tdm_reservation(content: str) -> bool:
    """A ``tdm-reservation`` meta's content reserves the rights (TDMRep: "1"; "0" does not)."""
    return content.strip() == "1"


def meta_opt_out(metas: Iterable[tuple[str, str]], bot_token: str, respect_tdmrep: bool) -> Verdict:
    """The opt-out ``(name, content)`` meta pairs declare (names any case), or None."""
    names = {"robots", bot_token.lower()} - {""}
    reserved, policy = False, ""
    for n, (name, content) in enumerate(metas):
        if n >= _MAX_METAS:
            break
        name, content = (name or "").strip().lower(), (content or "")[:1000]
        if name in names:
            found = noai_directives(content)
            if found:
                return DropReason.EXTRACT_PAGE_NOAI, f"meta {name}: {', '.join(sorted(found))}"
        elif name == "tdm-reservation":
            reserved = reserved or tdm_reservation(content)
        elif name == "tdm-policy" and not policy:
            policy = content.strip()
    if reserved and respect_tdmrep:
        detail = "meta tdm-reservation: 1" + (f" (tdm-policy {policy})" if policy else "")
        return DropReason.EXTRACT_TDM_RESERVED, detail[:_DETAIL_CHARS]
    return None


def page_opt_out(doc, bot_token: str, respect_tdmrep: bool) -> Verdict:
    """The opt-out the page's ``<meta>`` tags declare, or None."""
    return meta_opt_out(((m.get("name"), m.get("content")) for m in doc.iter("meta")), bot_token, respect_tdmrep)
