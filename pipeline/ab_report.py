"""`wit ab`'s verdict: mean ± sd per task and arm, the gap, whether the seeds separate the arms.

Input: per arm, per training seed, the headline score of every eval task (pipeline/ab.py).
Output: a comparison per task (``compare``), a printable table (``format_table``) and one
self-contained HTML page with the table and a plot (``write_html``; the PNG is embedded, its
metadata fixed, so a rerun with the same scores writes the same bytes). Nothing is dropped.

"Separated" is Welch's t-test (scipy) at p < 0.05 with at least two seeds per arm: with one
seed, or a p-value above that, the table says the seeds do not separate the arms, whatever the
gap of the means. Identical scores in every seed of both arms (sd 0) separate when the means
differ (a deterministic difference) and not otherwise.
"""

from __future__ import annotations

import base64
import html
import io
import math
import statistics
from typing import Optional, Sequence

ALPHA = 0.05


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def welch_p(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Two-sided p-value of Welch's t-test; None with fewer than two values in an arm."""
    if len(a) < 2 or len(b) < 2:
        return None
    if _sd(a) == 0 and _sd(b) == 0:
        return 1.0 if statistics.mean(a) == statistics.mean(b) else 0.0
    from scipy import stats

    return float(stats.ttest_ind(list(a), list(b), equal_var=False).pvalue)


def compare(task: str, a: Sequence[float], b: Sequence[float]) -> dict:
    """One task's row: means, sds, gap (A - B), p and whether the seeds separate the arms."""
    p = welch_p(a, b)
    separated = p is not None and p < ALPHA
    return {"task": task, "a": list(a), "b": list(b),
            "mean_a": statistics.mean(a), "sd_a": _sd(a), "mean_b": statistics.mean(b), "sd_b": _sd(b),
            "gap": statistics.mean(a) - statistics.mean(b), "p": p, "separated": separated}


def _verdict(row: dict, names: tuple[str, str]) -> str:
    if row["p"] is None:
        return "one seed per arm: cannot tell (give --seeds 0 1 2)"
    if not row["separated"]:
        return f"seeds do not separate the arms (p = {row['p']:.2f})"
    better = names[0] if row["gap"] > 0 else names[1]
    return f"{better} better (p = {row['p']:.3f})"


def format_table(rows: Sequence[dict], names: tuple[str, str], seeds: Sequence[int]) -> str:
    """The comparison as fixed-width text, scores in percent."""
    width = max([len("task")] + [len(r["task"]) for r in rows])
    head = (f"{'task':<{width}}  {names[0][:18]:>18}  {names[1][:18]:>18}  {'gap (pts)':>9}  verdict"
            f"   (seeds {', '.join(map(str, seeds))})")
    lines = [head]
    for r in rows:
        a = f"{100 * r['mean_a']:.1f} ± {100 * r['sd_a']:.1f}"
        b = f"{100 * r['mean_b']:.1f} ± {100 * r['sd_b']:.1f}"
        lines.append(f"{r['task']:<{width}}  {a:>18}  {b:>18}  {100 * r['gap']:>+9.1f}  {_verdict(r, names)}")
    return "\n".join(lines)


def plot_png(rows: Sequence[dict], names: tuple[str, str]) -> bytes:
    """Per task: each seed's score as a dot, the arm's mean ± sd as a bar with error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(rows) + 1.5), 3.4))
    colours = ("#2a9d8f", "#e76f51")
    for i, r in enumerate(rows):
        for j, side in enumerate(("a", "b")):
            x = i + (j - 0.5) * 0.36
            ax.bar(x, 100 * r[f"mean_{side}"], width=0.34, color=colours[j], alpha=0.35,
                   label=names[j] if i == 0 else None)
            ax.errorbar(x, 100 * r[f"mean_{side}"], yerr=100 * r[f"sd_{side}"], color=colours[j], capsize=4)
            ax.scatter([x] * len(r[side]), [100 * v for v in r[side]], color=colours[j], s=14, zorder=3)
    ax.set_xticks(range(len(rows)), [r["task"] for r in rows], fontsize=8, rotation=15)
    ax.set_ylabel("score (%)", fontsize=9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def write_html(path: str, rows: Sequence[dict], names: tuple[str, str], meta: dict) -> str:
    """One page: what was compared, the table, the plot; returns ``path``."""
    png = base64.b64encode(plot_png(rows, names)).decode("ascii")
    esc = html.escape
    body = []
    for r in rows:
        cells = [r["task"], f"{100 * r['mean_a']:.1f} ± {100 * r['sd_a']:.1f}",
                 f"{100 * r['mean_b']:.1f} ± {100 * r['sd_b']:.1f}", f"{100 * r['gap']:+.1f}",
                 "—" if r["p"] is None or math.isnan(r["p"]) else f"{r['p']:.3f}", _verdict(r, names)]
        body.append("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in cells) + "</tr>")
    info = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in meta.items())
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>wit ab: {esc(names[0])} vs {esc(names[1])}</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}th{{background:#f4f4f4}}</style></head>
<body><h1>wit ab: {esc(names[0])} vs {esc(names[1])}</h1>
<table>{info}</table>
<table id="ab-table"><tr><th>task</th><th>{esc(names[0])} (mean ± sd, %)</th><th>{esc(names[1])} (mean ± sd, %)</th>
<th>gap (points)</th><th>Welch p</th><th>verdict</th></tr>{"".join(body)}</table>
<img id="ab-plot" alt="scores per task: each seed a dot, mean ± sd a bar" src="data:image/png;base64,{png}">
</body></html>
"""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(page)
    return path
