"""The report's charts as PNG files, drawn with matplotlib's Agg backend (no display needed).

Input: numbers from pipeline/report/content.py and the stats funnel. Output: one
PNG per chart at the path given; each function returns that path, or None when
the output has nothing to draw (e.g. no CLIP scores), so the page can say so.
PNG metadata is fixed so a rerun writes identical files.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter  # noqa: E402

log = logging.getLogger(__name__)

KEPT, DROPPED, ACCENT, INK = "#2a9d8f", "#e76f51", "#264653", "#444444"
_PNG_META = {"Software": None}


def _style(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=9)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata=_PNG_META)
    plt.close(fig)
    return path


def funnel_chart(funnel: Sequence[dict], path: str) -> Optional[str]:
    """Per stage: pairs that went on (green) and pairs dropped there (red), with the top reasons."""
    if not funnel:
        return None
    stages = [row["stage"] for row in funnel][::-1]
    outs = np.array([row["out"] for row in funnel][::-1])
    drops = np.array([row["in"] - row["out"] for row in funnel][::-1])
    fig, ax = plt.subplots(figsize=(10, max(2.2, 0.34 * len(funnel) + 1.3)))
    ax.barh(stages, outs, color=KEPT, label="went on")
    ax.barh(stages, drops, left=outs, color=DROPPED, label="dropped here")
    width = max(1, int((outs + drops).max()))
    for y, row in enumerate(funnel[::-1]):
        top = sorted(row["dropped"].items(), key=lambda kv: -kv[1])[:3]
        more = " …" if len(row["dropped"]) > 3 else ""
        text = f"{row['out']}" + (f"   −{row['in'] - row['out']}: " + ", ".join(
            f"{_short(r)} {n}" for r, n in top) + more if top else "")
        ax.text(row["in"] + width * 0.01, y, text, va="center", fontsize=8.5, color=INK)
    ax.set_xlim(0, width * 1.75)
    ax.set_xlabel("image/alt-text pairs", fontsize=9, color=INK)
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    _style(ax)
    return _save(fig, path)


def _short(reason: str, limit: int = 34) -> str:
    text = reason if len(reason) <= limit else reason[:limit - 1] + "…"
    return text.replace("$", r"\$")  # free text (img2dataset errors): no mathtext


def score_histogram(kept: Sequence[float], dropped: Sequence[float], threshold: Optional[float],
                    path: str) -> Optional[str]:
    """CLIP scores of kept and of below-threshold pairs on shared bins, the threshold drawn."""
    if not kept and not dropped:
        return None
    values = list(kept) + list(dropped) + ([threshold] if threshold is not None else [])
    bins = np.linspace(min(values), max(values), 41)
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    ax.hist([list(dropped), list(kept)], bins=bins, stacked=True, color=[DROPPED, KEPT],
            label=[f"dropped by score ({len(dropped)})", f"kept ({len(kept)})"])
    if threshold is not None:
        ax.axvline(threshold, color=ACCENT, linestyle="--", linewidth=1.5)
        ax.annotate(f"threshold {threshold:g}", xy=(threshold, 1), xycoords=("data", "axes fraction"),
                    xytext=(4, -4), textcoords="offset points", va="top", fontsize=9, color=ACCENT)
    ax.set_xlabel("CLIP image–text similarity", fontsize=9, color=INK)
    ax.set_ylabel("pairs", fontsize=9, color=INK)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    _style(ax)
    return _save(fig, path)


def caption_length_chart(kept_words: Sequence[int], dropped_words: Sequence[int],
                         path: str) -> Optional[str]:
    """Words per caption, kept vs dropped (every stage's drops)."""
    if not kept_words and not dropped_words:
        return None
    top = max(list(kept_words) + list(dropped_words) + [1])
    bins = np.arange(0, min(top, 60) + 2) - 0.5
    clipped = [[min(w, 60) for w in ws] for ws in (dropped_words, kept_words)]
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    ax.hist(clipped, bins=bins, stacked=True, color=[DROPPED, KEPT],
            label=[f"dropped ({len(dropped_words)})", f"kept ({len(kept_words)})"])
    ax.set_xlabel("words in caption" + (" (60+ pooled)" if top > 60 else ""), fontsize=9, color=INK)
    ax.set_ylabel("pairs", fontsize=9, color=INK)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return _save(fig, path)


def image_size_chart(kept_sizes: Sequence[tuple[int, int]], dropped_sizes: Sequence[tuple[int, int]],
                     min_side: Optional[int], max_aspect: Optional[float], path: str) -> Optional[str]:
    """Original width × height of kept images and of those image rules dropped, with the limits."""
    if not kept_sizes and not dropped_sizes:
        return None
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    if kept_sizes:
        ax.scatter(*zip(*kept_sizes), s=12, color=KEPT, alpha=0.7, label=f"kept ({len(kept_sizes)})")
    if dropped_sizes:
        ax.scatter(*zip(*dropped_sizes), s=22, color=DROPPED, marker="x",
                   label=f"dropped by image rules ({len(dropped_sizes)})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    if min_side:
        ax.axvline(min_side, color=ACCENT, linestyle=":", linewidth=1)
        ax.axhline(min_side, color=ACCENT, linestyle=":", linewidth=1, label=f"min side {min_side}px")
    if max_aspect:  # the band of allowed aspect ratios, within the data's limits
        xlim, ylim = ax.get_xlim(), ax.get_ylim()
        xs = np.geomspace(*xlim, 50)
        for line in (xs * max_aspect, xs / max_aspect):
            ax.plot(xs, line, color="#999999", linestyle="--", linewidth=0.8)
        ax.set_xlim(xlim)
        ax.set_ylim(ylim)
    for axis in (ax.xaxis, ax.yaxis):  # pixel sizes read best as plain powers of two
        axis.set_major_locator(LogLocator(base=2))
        axis.set_major_formatter(FormatStrFormatter("%d"))
        axis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("original width (px)", fontsize=9, color=INK)
    ax.set_ylabel("original height (px)", fontsize=9, color=INK)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    return _save(fig, path)
