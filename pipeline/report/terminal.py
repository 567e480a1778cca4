"""``wit inspect OUT`` in the terminal: the funnel, failed pages, opt-outs, the licence mix of the
kept samples, the run (date, duration, runner, scorer), thresholds and output sizes as rich tables,
and ``--sample N [--reason R]``: N random samples (caption, url, score).

Input: a ``RunData``. Output: text on a rich ``Console`` (colour on a terminal,
plain text when piped). Raises ``ReportInputError`` for a ``--reason`` the run lacks.
"""

from __future__ import annotations

from typing import Optional

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipeline.report import content
from pipeline.report.loader import ReportInputError, RunData


def funnel_table(run: RunData) -> Table:
    total = run.stats.get("pairs_extracted", 0)
    table = Table(title="Funnel (image/alt-text pairs)", box=box.SIMPLE_HEAD, title_justify="left")
    for name, justify in (("stage / reason", "left"), ("in", "right"), ("out", "right"),
                          ("dropped", "right"), ("% of stage in", "right"), ("% of all", "right")):
        table.add_column(name, justify=justify)
    for row in run.stats.get("funnel", []):
        dropped = row["in"] - row["out"]
        table.add_row(f"[bold]{escape(str(row['stage']))}[/bold]", str(row["in"]), str(row["out"]),
                      f"[red]{dropped}[/red]" if dropped else "0",
                      content.percent(dropped, row["in"]), content.percent(dropped, total))
        for reason, n in sorted(row["dropped"].items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(f"  {escape(reason)}", "", "", str(n), content.percent(n, row["in"]),
                          content.percent(n, total), style="dim")
    return table


def settings_table(run: RunData) -> Table:
    table = Table(title="Run, thresholds and output", box=box.SIMPLE_HEAD, title_justify="left", show_header=False)
    table.add_column("name")
    table.add_column("value")
    for name, value in content.run_rows(run):
        table.add_row(name, escape(str(value)))
    for name, value in (run.stats.get("thresholds") or {}).items():
        table.add_row(name, "—" if value is None else str(value))
    files, size = run.files, content.human_bytes
    table.add_row("shards", f"{files['tars']} tar ({size(files['tar_bytes'])}), "
                            f"{files['parquets']} parquet ({size(files['parquet_bytes'])}) in {run.shards_dir}")
    if run.layout == "wit":
        table.add_row("rejections", f"{files['rejection_files']} parquet ({size(files['rejection_bytes'])})")
    return table


def opt_out_table(run: RunData, max_domains: int = 10) -> Optional[Table]:
    """Pairs refused by robots.txt, noai headers and blocklists, per domain (stats.json ``opt_out``;
    ``*.robots_unavailable`` is a host that is down, not an opt-out: never here)."""
    view = content.opt_out_view(run, max_domains)
    if view is None:
        return None
    plural = "" if view.domain_count == 1 else "s"
    table = Table(title=f"Opt-outs and blocklists ({view.domain_count} domain{plural})", box=box.SIMPLE_HEAD,
                  title_justify="left")
    table.add_column("domain")
    for reason in view.reasons:
        table.add_column(reason, justify="right")
    for domain, counts in view.domains:
        table.add_row(escape(domain), *(str(counts.get(r, "")) for r in view.reasons))
    table.add_row("[bold]all[/bold]", *(f"[bold]{view.total[r]}[/bold]" for r in view.reasons))
    return table


def failed_pages_table(run: RunData) -> Optional[Table]:
    """Pages that could not be crawled: a few per reason with the reason's detail (stats.json ``pages``)."""
    failed = content.failed_pages(run)
    if not failed["total"]:
        return None
    table = Table(title=f"Failed pages ({failed['total']}: "
                  + ", ".join(f"{escape(r)} {n}" for r, n in failed["by_reason"].items()) + ")",
                  box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("reason", "page (crawled URL)", "detail"):
        table.add_column(name, overflow="fold")
    for sample in failed["samples"]:
        table.add_row(escape(sample.get("reason") or ""), escape(sample.get("url") or ""),
                      escape(sample.get("detail") or ""))
    if not failed["samples"]:
        table.add_row("", "(not recorded: an output written before stats.json kept pages.failed_samples)", "")
    return table


def license_table(run: RunData, max_rows: int = 12) -> Optional[Table]:
    """The licence mix of the kept samples (stats.json ``license.kept``); None when not recorded."""
    rows = content.license_rows(run)
    if not rows:
        return None
    allow = (run.stats.get("license") or {}).get("allow")
    title = "Licences of kept samples" + (f" (license.allow: {', '.join(allow)})" if allow else "")
    table = Table(title=escape(title), box=box.SIMPLE_HEAD, title_justify="left", min_width=len(title) + 2)
    for name, justify in (("licence", "left"), ("samples", "right"), ("% of kept", "right")):
        table.add_column(name, justify=justify)
    for row in rows[:max_rows]:
        table.add_row(escape(row.license), str(row.count), f"{100 * row.share:.1f}%")
    if len(rows) > max_rows:
        rest = rows[max_rows:]
        table.add_row(f"({len(rest)} more)", str(sum(r.count for r in rest)),
                      f"{100 * sum(r.share for r in rest):.1f}%", style="dim")
    return table


def internal_errors_table(run: RunData) -> Optional[Table]:
    """Items that met a bug in our code (stats.json ``internal_errors``): counts and sample details."""
    section = run.stats.get("internal_errors") or {}
    if not section.get("total"):
        return None
    table = Table(title=f"[bold red]Internal errors[/bold red] ({section['total']} items set aside; "
                  "reason *.internal_error in rejections/)", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("reason", "items", "sample item", "detail"):
        table.add_column(name, justify="right" if name == "items" else "left", overflow="fold")
    samples: dict = {}
    for sample in section.get("samples") or []:
        samples.setdefault(sample.get("reason"), sample)
    for reason, n in (section.get("by_reason") or {}).items():
        sample = samples.get(reason, {})
        table.add_row(escape(reason), str(n), escape(sample.get("url") or sample.get("key") or ""),
                      escape(sample.get("detail") or ""))
    return table


def summary_line(run: RunData) -> str:
    s = run.stats
    pages = s.get("pages")
    page_text = f"pages fetched {pages['fetched']}, failed {pages['failed']}; " if pages else ""
    accounting = "accounting ok" if s.get("accounting_ok") else "[bold red]accounting BROKEN[/bold red]"
    return (f"{page_text}pairs extracted {s.get('pairs_extracted', 0)}, kept {s.get('kept', 0)} "
            f"({content.percent(s.get('kept', 0), s.get('pairs_extracted', 0))}), "
            f"rejected {s.get('rejected', 0)}; {accounting}")


def _console() -> Console:
    console = Console()
    # Piped output has no width to fit; 80 columns would wrap the funnel's reasons.
    return console if console.is_terminal else Console(width=120)


def print_summary(run: RunData, console: Optional[Console] = None) -> None:
    """The terminal view of a run."""
    console = console or _console()
    console.print(f"[bold]{escape(run.root)}[/bold] ({run.layout} output)")
    console.print(summary_line(run))
    internal = internal_errors_table(run)
    if internal is not None:
        console.print(internal)
    console.print(funnel_table(run))
    failed = failed_pages_table(run)
    if failed is not None:
        console.print(failed)
    opt_out = opt_out_table(run)
    if opt_out is not None:
        console.print(opt_out)
    licenses = license_table(run)
    if licenses is not None:
        console.print(licenses)
    console.print(settings_table(run))


def print_samples(run: RunData, n: int, reason: Optional[str] = None, seed: int = 0,
                  console: Optional[Console] = None) -> int:
    """Print ``n`` random kept samples, or rejections of ``reason`` (or a stage prefix). Returns how many."""
    console = console or _console()
    if reason:
        table = content.dropped_with_reason(run, reason)
        if table.num_rows == 0:
            known = sorted(set(run.dropped.column("reason").to_pylist()))
            raise ReportInputError(f"no rejections with reason {reason!r}; this run has: {', '.join(known) or 'none'}")
    else:
        table = run.kept
    rows = content.pick_rows(table, n, seed)
    source = f"rejections '{reason}'" if reason else "kept samples"
    console.print(f"{len(rows)} of {table.num_rows} {source} (seed {seed})", highlight=False)
    for i, row in enumerate(rows, 1):
        score = row.get("clip_score")
        score_text = f"score {score:.3f}" if score is not None else "score –"
        caption = escape(row.get("caption") or "(empty)")  # web text: no rich markup
        console.print(f"[bold]{i:>3}.[/bold] {score_text}  {caption}",
                      highlight=False, markup=True, soft_wrap=True)
        url = row.get("url") or row.get("image_url") or ""
        console.print(f"     {url}", highlight=False, markup=False, soft_wrap=True)
        if reason:
            console.print(f"     {row['reason']}: {row.get('detail') or ''}", highlight=False,
                          markup=False, soft_wrap=True)
        if row.get("page_url"):
            console.print(f"     page {row['page_url']}", highlight=False, markup=False, soft_wrap=True)
    return len(rows)
