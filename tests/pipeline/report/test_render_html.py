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
from pipeline.report.render_html import assets_dir_for, write_report

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
CHARTS = ("funnel.png", "clip_scores.png", "caption_words.png", "image_sizes.png")


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
  var result = {
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
