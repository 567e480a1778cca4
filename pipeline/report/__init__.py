"""``wit inspect``: look at a curated output — ours or img2dataset's — in the terminal or a browser.

Input: an output directory. Output: rich tables on the terminal, random samples,
or a static HTML report folder. Modules: ``loader`` (both layouts into one
``RunData``), ``content`` (what to show: picks, groups, threshold table),
``terminal`` (rich tables, samples), ``plots`` (matplotlib PNGs), ``render_html``
(the report folder; its Jinja template is ``report.html.j2``).
"""

from pipeline.report.loader import ReportInputError, RunData, load_run

__all__ = ["ReportInputError", "RunData", "load_run"]
