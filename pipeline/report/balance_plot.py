"""The report's balancing chart: matches per metadata entry before and after BalanceByMetadata.

Input: stats.json's ``balance`` section (transforms/balance.py): ``before`` and ``after``, each
with a rank/count ``curve``, the ``top`` entries, entries hit, head share and entropy, and
``t``. Output: one PNG at the path given (matplotlib Agg, fixed PNG metadata so a rerun writes
the same bytes), or None when the run did not balance (no section, or no entry hit), so the
page can say so. ``top_kept`` (the kept matches of the entries most matched before) feeds the bars. Left: matches per entry by rank, log-log, with the cap ``t`` — balancing
flattens the head down to about ``t`` and leaves the tail. Right: the most matched entries,
before and after.
"""

from __future__ import annotations

from typing import Optional

import matplotlib

matplotlib.use("Agg")  # before pyplot: headless, no GUI toolkit
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.report.plots import ACCENT, DROPPED, INK, KEPT, _save, _style  # noqa: E402

TOP_SHOWN = 12


def _summary(doc: dict) -> str:
    share = doc.get("head_share")
    entropy = doc.get("entropy_bits")
    return (f"{doc.get('entries_hit', 0)} entries hit, {doc.get('matches', 0)} matches; top 1% hold "
            f"{share:.1%}" if share is not None else "no matches") + (
        f"; entropy {entropy:.2f} bits" if entropy is not None else "")


def balance_chart(balance: Optional[dict], path: str) -> Optional[str]:
    """Rank/count curves before (red) and after (green) balancing, and the top entries."""
    before, after = (balance or {}).get("before") or {}, (balance or {}).get("after") or {}
    if not before.get("curve"):
        return None
    fig, (curve_ax, top_ax) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [3, 2]})
    for doc, colour, label in ((before, DROPPED, "before"), (after, KEPT, "after")):
        points = doc.get("curve") or []
        if points:
            curve_ax.loglog([r for r, _ in points], [c for _, c in points], color=colour, linewidth=2,
                            marker="o", markersize=3, label=f"{label}: {_summary(doc)}")
    t = balance.get("t")
    if t:
        curve_ax.axhline(t, color=ACCENT, linestyle="--", linewidth=1, label=f"t = {t}")
    curve_ax.set_xlabel("entry rank (most matched first)", fontsize=9, color=INK)
    curve_ax.set_ylabel("captions matching the entry", fontsize=9, color=INK)
    curve_ax.legend(fontsize=7.5, frameon=False, loc="lower left")
    _style(curve_ax)
    kept = dict((name, n) for name, n in balance.get("top_kept") or [])
    top = (before.get("top") or [])[:TOP_SHOWN][::-1]
    names = [name for name, _ in top]
    top_ax.barh(names, [n for _, n in top], color=DROPPED, label="before")
    top_ax.barh(names, [kept.get(name, 0) for name in names], color=KEPT, label="after")
    top_ax.set_xscale("log")
    top_ax.tick_params(axis="y", labelsize=8)
    top_ax.set_xlabel("matches (log)", fontsize=9, color=INK)
    top_ax.legend(fontsize=7.5, frameon=False, loc="lower right")
    _style(top_ax)
    return _save(fig, path)
