"""The HTML report: a self-contained folder, reproducible, escaped, and checked in headless Chromium."""

import html
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pyarrow as pa
import pytest

from pipeline.report.loader import ReportInputError, load_run
from pipeline.report.render_html import CRAWLED_TITLE, anchor, assets_dir_for, crawled_url, write_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
CHARTS = ("funnel.png", "clip_scores.png", "caption_words.png", "image_sizes.png")
# Reasons of the sample web given after the image was downloaded (they have thumbnails), and before
POST_DOWNLOAD = ("image.too_small", "image.bad_aspect", "dedupe.image_exact", "dedupe.image_near",
                 "clip.below_threshold")
PRE_DOWNLOAD = ("caption.empty", "dedupe.url", "fetch.http_4xx", "fetch.noai", "image.undecodable")


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.src, self.href, self.scripts_with_src = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "src" in attrs:
            self.src.append(attrs["src"])
        if tag == "a" and "href" in attrs:
            self.href.append(attrs["href"])
        if tag in ("script", "link") and (attrs.get("src") or attrs.get("href", "data:").split(":")[0] != "data"):
            self.scripts_with_src.append(attrs)


def _refs(path):
    parser = _Refs()
    parser.feed(open(path, encoding="utf-8").read())
    return parser


@pytest.fixture(scope="module")
def report(curated, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    return write_report(load_run(str(curated)), str(path))


def test_folder_is_self_contained(report):
    assets = assets_dir_for(report)
    assert sorted(os.listdir(assets)) == sorted([*CHARTS, "thumbs", ".wit-report"])
    refs = _refs(report)
    assert refs.src and not refs.scripts_with_src  # no external scripts or stylesheets
    for src in refs.src:
        assert "://" not in src, src  # everything the page shows is in the folder
        assert os.path.exists(os.path.join(os.path.dirname(report), src)), src
    thumbs = [s for s in refs.src if "/thumbs/" in s]
    assert len(set(thumbs)) == len(os.listdir(os.path.join(assets, "thumbs"))) > 20
    assert all(h.startswith(("#", "http://", "https://")) for h in refs.href)


def test_report_tells_the_run(report, curated):
    page = open(report, encoding="utf-8").read()
    stats = json.loads((curated / "stats.json").read_text())
    for reason in stats["rejected_by_reason"]:
        assert f'id="reason-{re.sub(r"[^a-z0-9]+", "-", reason)}"' in page
    assert "0.55 (this run)" in page and 'id="thr"' in page
    assert "<h3>Near-duplicates</h3>" in page
    if stats["rejected_by_reason"].get("dedupe.image_near"):
        assert "dedupe.image_near</code></li>" in page  # groups: kept image beside its dropped copies
    assert f"{stats['kept']}</div>" in page


def test_rerun_is_identical_and_rewrites_its_own_assets(curated, tmp_path):
    run = load_run(str(curated))
    a = write_report(run, str(tmp_path / "a" / "report.html"))
    b = write_report(run, str(tmp_path / "b" / "report.html"))
    assert open(a, encoding="utf-8").read() == open(b, encoding="utf-8").read()
    for chart in CHARTS:
        assert open(os.path.join(assets_dir_for(a), chart), "rb").read() == \
            open(os.path.join(assets_dir_for(b), chart), "rb").read()
    write_report(run, a)  # again into the same place
    foreign = tmp_path / "c" / "report_assets"
    foreign.mkdir(parents=True)
    with pytest.raises(ReportInputError, match="not written by wit inspect"):
        write_report(run, str(tmp_path / "c" / "report.html"))


def test_web_text_is_escaped_and_only_http_links(img2dataset_dir, tmp_path):
    run = load_run(str(img2dataset_dir))
    evil = "<script>alert(1)</script>"
    run.kept = run.kept.set_column(2, "caption", pa.array([evil, "fine"]))
    run.kept = run.kept.set_column(1, "url", pa.array(["javascript:alert(1)", "https://ok.test/x.jpg"]))
    page = open(write_report(run, str(tmp_path / "r" / "report.html")), encoding="utf-8").read()
    assert evil not in page and html.escape(evil) in page.replace("&#34;", '"').replace("&#39;", "'")
    assert "javascript:" not in page and "https://ok.test/x.jpg" in page
    assert "No CLIP scores in this output" in page


def _chromium(tmp_path, *args):
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chromium-profile'}",
           "--virtual-time-budget=5000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


# Runs before the page's own scripts: records errors, then on load writes what it found into the DOM.
CHECK = """<script>
window.__witErrors = [];
window.addEventListener("error", function (e) {
  var t = e.target;
  window.__witErrors.push(t && t.tagName ? "failed to load " + (t.src || t.href) : "error: " + e.message);
}, true);
(function () {
  var original = console.error;
  console.error = function () {
    window.__witErrors.push("console.error: " + Array.prototype.join.call(arguments, " "));
    return original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var hist = document.getElementById("score-histogram");
  var rejectGrids = {};
  Array.prototype.forEach.call(document.querySelectorAll(".grid.rejects"), function (grid) {
    rejectGrids[grid.id] = Array.prototype.filter.call(grid.querySelectorAll("img"), function (i) {
      return i.complete && i.naturalWidth > 0 && i.getAttribute("src").indexOf("/dropped-") >= 0;
    }).length;
  });
  function shown(id) { var el = document.getElementById(id); return el ? el.offsetHeight > 0 && el.innerText : ""; }
  var result = {
    reject_grids: rejectGrids,
    failed_pages: shown("failed-pages"),
    opt_out: shown("opt-out"),
    run: shown("run-table"),
    images: images.length,
    grid_images: document.querySelectorAll(".grid img").length,
    broken: images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                  .map(function (i) { return i.getAttribute("src"); }),
    histogram: !!(hist && hist.naturalWidth > 0),
    slider: (document.getElementById("thr-result") || {}).textContent || "",
    errors: window.__witErrors
  };
  var pre = document.createElement("pre");
  pre.id = "wit-check";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>"""


def test_report_in_headless_chromium(report, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'; .ci/run installs it): "
                    "the in-browser check of the HTML report is skipped")
    page = open(report, encoding="utf-8").read()
    check_page = os.path.join(os.path.dirname(report), "report_check.html")  # same folder: same relative assets
    with open(check_page, "w", encoding="utf-8") as fh:
        fh.write(page.replace("<head>", "<head>\n" + CHECK, 1))
    dumped = _chromium(tmp_path, "--dump-dom", f"file://{check_page}")
    match = re.search(r'<pre id="wit-check">(.*?)</pre>', dumped.stdout, re.S)
    assert match, f"the check did not run; chromium rc={dumped.returncode} stderr: {dumped.stderr[-2000:]}"
    result = json.loads(html.unescape(match.group(1)))
    assert result["errors"] == [], result["errors"]
    assert result["broken"] == [], result["broken"]
    assert result["grid_images"] > 20 and result["images"] >= result["grid_images"]
    assert result["histogram"], "the CLIP score histogram did not load"
    assert re.match(r"\d+ kept \(", result["slider"]), result["slider"]
    assert "Uncaught" not in dumped.stderr
    # issue 17 item 5: thumbnails of images dropped after download, under their reasons
    with_thumbs = {grid: n for grid, n in result["reject_grids"].items() if n}
    assert len(with_thumbs) >= 3 and set(with_thumbs) <= {"grid-" + anchor(r) for r in POST_DOWNLOAD}, \
        result["reject_grids"]
    assert "missing.html" in result["failed_pages"] and "crawl.http_4xx" in result["failed_pages"], result["failed_pages"]
    assert "127.0.0.1" in result["opt_out"] and "fetch.robots_disallowed" in result["opt_out"], result["opt_out"]
    assert "wit-tiny · wit-tiny-scorer.pt" in result["run"] and "FnApiRunner" in result["run"], result["run"]

    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", f"file://{report}")
    assert shot.exists() and shot.stat().st_size > 50_000, taken.stderr[-2000:]
    if os.environ.get("WIT_ARTIFACTS"):
        os.makedirs(os.environ["WIT_ARTIFACTS"], exist_ok=True)
        shutil.copy(shot, os.path.join(os.environ["WIT_ARTIFACTS"], "report.png"))


def test_report_shows_internal_errors_escaped(img2dataset_dir, tmp_path):
    run = load_run(str(img2dataset_dir))
    page = open(write_report(run, str(tmp_path / "a" / "report.html")), encoding="utf-8").read()
    assert 'id="internal-errors"' not in page
    run.stats["internal_errors"] = {"total": 1, "by_reason": {"extract.internal_error": 1}, "samples": [
        {"reason": "extract.internal_error", "key": "k", "url": "http://a.test/p.html",
         "detail": "ValueError: <script>x</script> @ transforms/extract_alt_text.py:9 in extract_isolated"}]}
    page = open(write_report(run, str(tmp_path / "b" / "report.html")), encoding="utf-8").read()
    assert 'id="internal-errors"' in page and "extract.internal_error" in page and "exited 3" in page
    assert "<script>x</script>" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_report_shows_the_licence_mix_escaped(img2dataset_dir, tmp_path):
    run = load_run(str(img2dataset_dir))
    page = open(write_report(run, str(tmp_path / "a" / "report.html")), encoding="utf-8").read()
    assert 'id="licenses"' not in page  # img2dataset records no licences
    run.stats["license"] = {"allow": ["cc0-1.0", "<b>x</b>"], "kept": {"cc0-1.0": 3, "unknown": 1}}
    page = open(write_report(run, str(tmp_path / "b" / "report.html")), encoding="utf-8").read()
    assert 'id="licenses"' in page and 'href="#licenses"' in page
    assert "<code>cc0-1.0</code></td><td class=\"num\">3</td><td class=\"num\">75.0%</td>" in page
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page


def test_report_shows_the_opt_outs_per_domain_escaped(img2dataset_dir, tmp_path):
    run = load_run(str(img2dataset_dir))
    page = open(write_report(run, str(tmp_path / "a" / "report.html")), encoding="utf-8").read()
    assert 'id="opt-out"' not in page  # nothing refused
    run.stats["opt_out"] = {"total": {"fetch.noai": 3, "extract.page_noai": 2}, "domains": 2, "by_domain": {
        "img.a.test": {"fetch.noai": 3}, "<i>pages.b.test</i>": {"extract.page_noai": 2}}}
    page = open(write_report(run, str(tmp_path / "b" / "report.html")), encoding="utf-8").read()
    assert 'id="opt-out"' in page and 'href="#opt-out"' in page
    assert "<td>img.a.test</td><td class=\"num\"></td><td class=\"num\">3</td>" in page
    assert "<i>pages.b.test</i>" not in page and "&lt;i&gt;pages.b.test&lt;/i&gt;" in page


def _section(page: str, reason: str) -> str:
    start = page.index(f'<h3 id="{anchor(reason)}">')
    end = page.find("<h3 ", start + 10)
    return page[start:end if end > 0 else len(page)]


def test_pairs_dropped_after_download_show_their_own_thumbnails(report, curated):
    page = open(report, encoding="utf-8").read()
    reasons = json.loads((curated / "stats.json").read_text())["rejected_by_reason"]
    shown = [r for r in POST_DOWNLOAD if r in reasons]
    assert len(shown) >= 3, reasons
    for reason in shown:
        section = _section(page, reason)
        thumbs = re.findall(r'src="([^"]*/thumbs/dropped-[^"]+)"', section)
        assert thumbs and 'class="grid rejects"' in section, reason
        for src in thumbs:
            assert os.path.getsize(os.path.join(os.path.dirname(report), src)) > 200
    for reason in (r for r in PRE_DOWNLOAD if r in reasons):
        assert "/dropped-" not in _section(page, reason), reason  # never downloaded (or not decodable)


def test_failed_pages_say_which_and_why(report):
    page = open(report, encoding="utf-8").read()
    assert 'id="failed-pages"' in page and 'href="#failed-pages"' in page
    section = page[page.index('<section id="failed-pages">'):]
    section = section[:section.index("</section>")]
    assert "/pages/missing.html" in section and "crawl.http_4xx" in section and "HTTP 404" in section


def test_run_table_has_date_duration_runner_scorer_and_hash(report, curated):
    page = open(report, encoding="utf-8").read()
    table = page[page.index('<table id="run-table">'):]
    table = table[:table.index("</table>")]
    info = json.loads((curated / "run_info.json").read_text())
    assert f"<th>date</th><td>{info['date']}</td>" in table and re.search(r"<th>duration</th><td>[\d.]+ s", table)
    assert "<th>runner</th><td>FnApiRunner (local" in table
    assert "<code>wit-tiny · wit-tiny-scorer.pt</code>" in table and "/models/" not in table
    assert json.loads((curated / "stats.json").read_text())["config_hash"] in table


class _Crawled(HTMLParser):
    def __init__(self):
        super().__init__()
        self.marked, self.hrefs = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "crawled" in (attrs.get("class") or "").split():
            self.marked.append((tag, attrs))
        if tag == "a" and attrs.get("href"):
            self.hrefs.append(attrs["href"])


def test_crawled_urls_are_marked_and_the_dead_loopback_ones_are_no_links(report):
    parser = _Crawled()
    parser.feed(open(report, encoding="utf-8").read())
    assert len(parser.marked) > 50
    assert all(attrs["title"].startswith(CRAWLED_TITLE + ": http://127.0.0.1:") for _, attrs in parser.marked)
    assert all(tag == "span" for tag, _ in parser.marked)  # the sample server is gone after the run
    assert not [h for h in parser.hrefs if "127.0.0.1" in h or "localhost" in h]


@pytest.mark.parametrize("url, link", [
    ("https://example.org/a.jpg", True), ("http://images.site.com/x.png", True), ("http://8.8.8.8/i.jpg", True),
    ("http://127.0.0.1:8000/p.html", False), ("http://localhost/x", False), ("http://10.1.2.3/x", False),
    ("http://[::1]:80/x", False), ("http://a.test/1.jpg", False), ("http://intranet/x", False),
    ("http://[bad/x", False),
])
def test_which_crawled_urls_become_links(url, link):
    shown = crawled_url(url)
    assert shown["full"] == url and (shown["href"] == url) == link


@pytest.mark.parametrize("url", ["", None, "javascript:alert(1)", "JavaScript:x", "data:image/png;base64,AA",
                                 "ftp://example.org/x"])
def test_other_urls_are_not_shown(url):
    assert crawled_url(url) is None


def test_robots_unavailable_is_not_an_opt_out(img2dataset_dir, tmp_path):
    run = load_run(str(img2dataset_dir))
    run.stats["opt_out"] = {"total": {"fetch.robots_unavailable": 7, "fetch.noai": 1}, "domains": 2, "by_domain": {
        "down.example.org": {"fetch.robots_unavailable": 7}, "img.example.org": {"fetch.noai": 1}}}
    page = open(write_report(run, str(tmp_path / "a" / "report.html")), encoding="utf-8").read()
    section = page[page.index('<section id="opt-out">'):]
    table = section[section.index("<table"):section.index("</table>")]
    assert "img.example.org" in table and "fetch.noai" in table
    assert "robots_unavailable" not in table and "down.example.org" not in table
    run.stats["opt_out"] = {"total": {"fetch.robots_unavailable": 7}, "domains": 1,
                            "by_domain": {"down.example.org": {"fetch.robots_unavailable": 7}}}
    page = open(write_report(run, str(tmp_path / "b" / "report.html")), encoding="utf-8").read()
    assert 'id="opt-out"' not in page and 'href="#opt-out"' not in page
