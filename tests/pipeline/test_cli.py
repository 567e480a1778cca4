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
    samples = stats["pages"].pop("failed_samples")
    assert stats["pages"] == {"fetched": 0, "failed": 1, "failed_by_reason": {"crawl.private_address": 1}}
    assert [(s["url"], s["reason"]) for s in samples] == [(server.seed_urls[0], "crawl.private_address")]


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
    (tmp_path / "s.txt").write_text("http://127.0.0.1:9/\n")  # present: the error under test comes first
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "X" / "stats.json").exists()


def test_sample_write(tmp_path, capsys):
    assert main(["sample", "write", str(tmp_path / "site")]) == 0
    manifest = json.loads((tmp_path / "site" / "manifest.json").read_text())
    assert len(manifest["entries"]) > 100


# -- internal errors: the run completes, exit 3 with a summary, --resume completes too ------------

def _image_server(n: int):
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from PIL import Image

    images = {}
    for i in range(1, n + 1):
        buf = io.BytesIO()
        Image.new("RGB", (64, 48), (40 * i, 255 - 40 * i, 100)).save(buf, "JPEG")
        images[f"/i{i}.jpg"] = buf.getvalue()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = images.get(self.path)
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "image/jpeg" if body else "text/plain")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def test_curate_with_internal_errors_completes_exits_3_and_resumes(tmp_path, capsys, monkeypatch):
    import filters.caption_rules as caption_rules_mod
    import transforms.fetch as fetch_mod

    srv, base = _image_server(5)
    try:
        captions = ["a red square on a white wall", "a green circle in the grass", "the caption that trips a bug",
                    "a blue triangle by the sea", "a yellow star in the night sky"]
        listing = tmp_path / "list.csv"
        listing.write_text("url,caption\n" + "".join(f"{base}/i{i}.jpg,{c}\n" for i, c in enumerate(captions, 1)))
        real_fetch, real_resize, real_verdict = fetch_mod.fetch_image, fetch_mod.resize_fetched, \
            caption_rules_mod.caption_verdict

        def fetch_image(client, pair, svg):
            if pair.image_url.endswith("/i4.jpg"):
                raise RuntimeError("injected download bug")
            return real_fetch(client, pair, svg)

        def resize_fetched(fetched, spec, pool=None):
            if fetched.pair.image_url.endswith("/i2.jpg"):
                raise MemoryError("injected resize bug")
            return real_resize(fetched, spec, pool)

        def caption_verdict(caption, cfg):
            if caption == captions[2]:
                raise KeyError("injected caption bug")
            return real_verdict(caption, cfg)

        monkeypatch.setattr(fetch_mod, "fetch_image", fetch_image)
        monkeypatch.setattr(fetch_mod, "resize_fetched", resize_fetched)
        monkeypatch.setattr(caption_rules_mod, "caption_verdict", caption_verdict)
        out = tmp_path / "out"
        argv = ["curate", "--output", str(out), "--url-list", str(listing), "--allow-private-networks",
                "--set", "score.enabled=false", "--set", "dedupe.near=false", "--set", "output.keep_fetched=true",
                "--direct_num_workers=1"]
        assert main(argv) == 3
        printed = capsys.readouterr()
        assert "accounting ok" in printed.out
        err = printed.err
        assert "internal errors: 3 item(s)" in err
        assert "caption.internal_error 1, fetch.internal_error 1, image.internal_error 1" in err
        assert "first: caption.internal_error" in err and "KeyError: 'injected caption bug' @ filters/caption_rules.py:" in err
        assert f"{out}/rejections" in err and "--reason caption.internal_error" in err
        stats = json.loads((out / "stats.json").read_text())
        assert stats["accounting_ok"] and stats["kept"] == 2 and stats["pairs_extracted"] == 5
        internal = stats["internal_errors"]
        assert internal["total"] == 3 and [s["reason"] for s in internal["samples"]] == [
            "caption.internal_error", "fetch.internal_error", "image.internal_error"]
        assert "RuntimeError: injected download bug @ transforms/fetch.py:" in internal["samples"][1]["detail"]
        assert "MemoryError: injected resize bug @ transforms/fetch.py:" in internal["samples"][2]["detail"]
        import pyarrow.parquet as pq

        rejections = pq.read_table(str(out / "rejections")).to_pylist()
        by_url = {r["image_url"].rsplit("/", 1)[-1]: r["reason"] for r in rejections}
        assert by_url == {"i2.jpg": "image.internal_error", "i3.jpg": "caption.internal_error",
                          "i4.jpg": "fetch.internal_error"}
        assert main(["inspect", str(out)]) == 0
        assert "Internal errors" in capsys.readouterr().out
        # the bugs are still there: a resume meets them again and still completes
        assert main(argv + ["--resume"]) == 3
        assert "internal errors: 3 item(s)" in capsys.readouterr().err
        again = json.loads((out / "stats.json").read_text())
        assert again["accounting_ok"] and again["internal_errors"] == internal and again["kept"] == 2
    finally:
        srv.shutdown()
        srv.server_close()


def test_curate_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["curate", "--help"])
    text = capsys.readouterr().out
    assert "exit codes:" in text and "3  the run completed" in text and "internal_error" in text
