import json

import pytest
import yaml

from pipeline.cli import main
from pipeline.sample import SampleServer, generate_site


@pytest.fixture(scope="module")
def server():
    with SampleServer(generate_site(seed=0, n_pages=3)) as srv:
        yield srv


def test_curate_unscored_and_inspect(server, tmp_path, capsys):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(server.seed_urls[0] + "\n# a comment\n\nnot a url\n")
    out = tmp_path / "out"
    rc = main(["curate", "--output", str(out), "--seeds", str(seeds), "--allow-private-networks",
               "--set", "score.enabled=false", "--set", "crawl.max_depth=1", "--direct_num_workers=1"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "accounting ok" in printed and "CaptionRules" in printed
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pairs_extracted"] == stats["kept"] + stats["rejected"] > 0
    assert stats["scorer"] is None and "ClipThreshold" not in stats["stages"]
    assert yaml.safe_load((out / "run_config.yaml").read_text())["score"]["enabled"] is False
    assert main(["inspect", str(out)]) == 0
    assert "pairs extracted" in capsys.readouterr().out
    # a second run into the same directory needs --overwrite
    assert main(["curate", "--output", str(out), "--seeds", str(seeds), "--set", "score.enabled=false"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_ssrf_guard_is_on_by_default(server, tmp_path):
    seeds = tmp_path / "seeds.txt"
    seeds.write_text(server.seed_urls[0] + "\n")
    out = tmp_path / "out"
    assert main(["curate", "--output", str(out), "--seeds", str(seeds), "--set", "score.enabled=false"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["pages"] == {"fetched": 0, "failed": 1, "failed_by_reason": {"crawl.private_address": 1}}


@pytest.mark.parametrize("argv,message", [
    (["curate", "--output", "X", "--seeds", "s.txt", "--set", "score.min_scor=1"], "unknown key"),
    (["curate", "--output", "X", "--seeds", "s.txt", "--set", "score.pretrained=/nonexistent/w.pt"],
     "no such file"),
    (["curate", "--output", "X"], "no input"),
    (["curate", "--output", "X", "--seeds", "s.txt", "--set", "score.enabled=false", "--resume"],
     "--resume: X holds no run to continue"),
    (["curate", "--output", "X", "--seeds", "s.txt", "--set", "score.enabled=false", "--incremental"],
     "--incremental: X holds no run to continue"),
])
def test_errors_exit_2_before_running(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X" / "stats.json").exists()


def test_sample_write(tmp_path, capsys):
    assert main(["sample", "write", str(tmp_path / "site")]) == 0
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert len(manifest["entries"]) > 100
