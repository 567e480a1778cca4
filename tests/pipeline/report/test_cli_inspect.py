"""``wit inspect`` through the command line."""

import os

from pipeline.cli import main


def test_inspect_terminal_and_html(curated, tmp_path, capsys):
    assert main(["inspect", str(curated)]) == 0
    out = capsys.readouterr().out
    assert "pairs extracted" in out and "ClipThreshold" in out and "clip.below_threshold" in out
    html = tmp_path / "r" / "report.html"
    assert main(["inspect", str(curated), "--html", str(html)]) == 0
    assert f"report: {html}" in capsys.readouterr().out
    assert html.exists() and os.path.isdir(tmp_path / "r" / "report_assets")


def test_inspect_samples(curated, capsys):
    assert main(["inspect", str(curated), "--sample", "2", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 of ") and out.count("score ") == 2
    assert main(["inspect", str(curated), "--sample", "2", "--reason", "clip.below_threshold"]) == 0
    assert capsys.readouterr().out.count("clip.below_threshold:") == 2


def test_inspect_errors_exit_2(curated, tmp_path, capsys):
    assert main(["inspect", str(curated), "--reason", "caption"]) == 2
    assert "--reason needs --sample" in capsys.readouterr().err
    assert main(["inspect", str(curated), "--sample", "1", "--reason", "fetch.nope"]) == 2
    assert "this run has:" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == 2
    assert "neither a wit output" in capsys.readouterr().err


def test_inspect_an_img2dataset_folder(img2dataset_dir, capsys):
    assert main(["inspect", str(img2dataset_dir)]) == 0
    out = capsys.readouterr().out
    assert "img2dataset output" in out and "HTTP Error 404: Not Found" in out
