import io

import pytest
from rich.console import Console

from pipeline.report.loader import ReportInputError, load_run
from pipeline.report.terminal import print_samples, print_summary


def _console():
    buf = io.StringIO()
    return Console(file=buf, width=140, color_system=None), buf


def test_summary_shows_funnel_reasons_thresholds_and_sizes(curated):
    run = load_run(str(curated))
    console, buf = _console()
    print_summary(run, console)
    text = buf.getvalue()
    assert f"pairs extracted {run.stats['pairs_extracted']}, kept {run.stats['kept']}" in text
    assert "accounting ok" in text
    for row in run.stats["funnel"]:
        assert row["stage"] in text
        for reason in row["dropped"]:
            assert reason in text
    assert "clip_min_score" in text and "0.55" in text
    assert f"{run.files['tars']} tar" in text and "KiB" in text


def test_samples_kept_and_by_reason_are_seeded(curated):
    run = load_run(str(curated))
    console, buf = _console()
    assert print_samples(run, 3, seed=7, console=console) == 3
    first = buf.getvalue()
    assert "3 of" in first and "kept samples" in first and "score 0." in first and "http://" in first
    console2, buf2 = _console()
    print_samples(run, 3, seed=7, console=console2)
    assert buf2.getvalue() == first
    console3, buf3 = _console()
    n = print_samples(run, 50, reason="clip.below_threshold", console=console3)
    assert n == run.stats["rejected_by_reason"]["clip.below_threshold"]
    assert buf3.getvalue().count("clip.below_threshold:") == n


def test_sample_reason_that_is_not_there(curated):
    run = load_run(str(curated))
    with pytest.raises(ReportInputError, match="this run has: .*caption.empty"):
        print_samples(run, 2, reason="fetch.nope", console=_console()[0])


def test_captions_are_not_rich_markup(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    run.kept = run.kept.set_column(2, "caption", __import__("pyarrow").array(["[bold]x[/] [/oops]", "ok"]))
    console, buf = _console()
    print_samples(run, 2, console=console)
    assert "[bold]x[/] [/oops]" in buf.getvalue()


def test_free_text_reasons_are_not_rich_markup(img2dataset_dir):
    run = load_run(str(img2dataset_dir))
    reason = "<urlopen error [Errno 111] Connection refused>"
    run.stats["funnel"][0]["dropped"] = {reason: 1}
    console, buf = _console()
    print_summary(run, console)
    assert reason in buf.getvalue()


def test_summary_shows_the_opt_out_table_only_when_something_was_refused(curated):
    from pipeline.report.terminal import opt_out_table

    run = load_run(str(curated))
    run.stats["opt_out"] = {"total": {"blocklist.domain": 3, "fetch.noai": 2}, "domains": 2,
                            "by_domain": {"bad.example": {"blocklist.domain": 3}, "[x].org": {"fetch.noai": 2}}}
    console, buf = _console()
    print_summary(run, console)
    text = buf.getvalue()
    assert "Opt-outs and blocklists (2 domains)" in text and "bad.example" in text and "[x].org" in text
    assert "blocklist.domain" in text and "fetch.noai" in text
    run.stats["opt_out"] = {"total": {}, "by_domain": {}, "domains": 0}
    assert opt_out_table(run) is None


INTERNAL = {"total": 3, "by_reason": {"fetch.internal_error": 2, "crawl.internal_error": 1},
            "samples": [{"reason": "crawl.internal_error", "key": "", "url": "http://a.test/[p].html",
                         "detail": "RuntimeError: [bold]boom[/bold] @ transforms/crawl.py:1 in _visit"},
                        {"reason": "fetch.internal_error", "key": "k1", "url": "http://a.test/1.jpg",
                         "detail": "KeyError: 'x' @ transforms/fetch.py:2 in fetch_and_resize"}]}


def test_summary_shows_internal_errors_only_when_there_were_some(img2dataset_dir):
    from pipeline.report.terminal import internal_errors_table

    run = load_run(str(img2dataset_dir))
    assert internal_errors_table(run) is None
    run.stats["internal_errors"] = {"total": 0, "by_reason": {}, "samples": []}
    assert internal_errors_table(run) is None
    run.stats["internal_errors"] = INTERNAL
    console, buf = _console()
    print_summary(run, console)
    text = buf.getvalue()
    assert "Internal errors (3 items set aside" in text and "fetch.internal_error" in text
    assert "[bold]boom[/bold]" in text and "http://a.test/[p].html" in text  # web text: no rich markup
    assert "fetch_and_resize" in text


def test_summary_shows_the_licence_mix_of_kept_samples(curated):
    from pipeline.report.terminal import license_table

    run = load_run(str(curated))
    assert run.stats["license"]["kept"] == {"unknown": run.stats["kept"]}  # the sample web declares none
    run.stats["license"] = {"allow": ["cc-by-*"], "kept": {"cc-by-4.0": 6, "cc-by-sa-2.0-de": 2, "[red]": 2}}
    console, buf = _console()
    print_summary(run, console)
    text = buf.getvalue()
    assert "Licences of kept samples (license.allow: cc-by-*)" in text
    assert "cc-by-4.0" in text and "60.0%" in text and "cc-by-sa-2.0-de" in text and "[red]" in text
    run.stats.pop("license")
    assert license_table(run) is None


def test_summary_names_the_failed_pages_and_the_run(curated):
    run = load_run(str(curated))
    console, buf = _console()
    print_summary(run, console)
    text = buf.getvalue()
    assert "Failed pages (1: crawl.http_4xx 1)" in text and "/pages/missing.html" in text and "HTTP 404" in text
    assert "wit-tiny · wit-tiny-scorer.pt" in text and "FnApiRunner" in text and run.info["date"] in text


def test_robots_unavailable_is_not_in_the_opt_out_table(img2dataset_dir):
    from pipeline.report.terminal import opt_out_table

    run = load_run(str(img2dataset_dir))
    run.stats["opt_out"] = {"total": {"fetch.robots_unavailable": 4}, "domains": 1,
                            "by_domain": {"down.example": {"fetch.robots_unavailable": 4}}}
    assert opt_out_table(run) is None
    run.stats["opt_out"]["total"]["fetch.noai"] = 1
    run.stats["opt_out"]["by_domain"]["up.example"] = {"fetch.noai": 1}
    console, buf = _console()
    console.print(opt_out_table(run))
    assert "up.example" in buf.getvalue() and "down.example" not in buf.getvalue()
    assert "robots_unavailable" not in buf.getvalue()
