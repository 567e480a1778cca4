"""End to end: one ``wit curate`` over inputs mixing 5 good images with every input-level trigger.

Loopback servers on several ports (each port a host, let through the SSRF guard by
``fetch.private_network_allowlist``; one more loopback port, a CountingListener, is
not, and an SSRF redirect points at it): a good-image host, a crawled site, and
hostile hosts (tests/transforms/hostile_server.py). Inputs: a CSV list (a latin-1
caption byte, a bad IPv6 literal, a 3,000-character URL, rows hitting the fetch-level
triggers), a JSONL list (malformed lines, ``null``, a bare string, a bare array, lone
surrogates), a JSON list that is an object, two lists with the same basename in
different folders, and seeds of a crawl whose page has ``<img width="²">``, a "²w"
srcset descriptor, bad IPv6 literals in ``<a href>``, ``<base href>`` and ``<img src>``,
and 300 unclosed tags before an ``<img>`` whose image 404s. One planted bug (a
download that raises for one URL) makes the run exit 3 with the internal-errors summary.

Asserted: the run ends in bounded time; the 5 good images are kept and only they;
the whole outcome map (every other pair a rejection with its exact reason); the
accounting identity in stats.json; sizes.json == tar members == parquet rows, no
duplicate member; the exit code 3 and its summary.
"""

import contextlib
import io
import json
import tarfile
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from PIL import Image

from pipeline import shard_format
from pipeline.cli import main
from pipeline.records import make_key
from tests.transforms.hostile_server import CountingListener, HostileServer, _ok
from transforms.url_list import source_id

RUN_BOUND_S = 180  # the whole curate run, Beam start-up included (about 20 s on 2 cores)
DEEP_TAGS = 300  # past libxml2's default depth limit (~256)


def _jpeg(colour, pattern: int) -> bytes:
    """A 64x48 JPEG, its colour and stripe pattern its own (no two are near-duplicates)."""
    img = Image.new("RGB", (64, 48), colour)
    for x in range(0, 64, 4 + 2 * pattern):
        for y in range(48):
            img.putpixel((x, y), (255 - colour[0], 255 - colour[1], 255 - colour[2]))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


GOOD = {f"/g{i}.jpg": _jpeg(colour, i) for i, colour in
        enumerate([(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (160, 30, 200)], 1)}


def _page(images: str, site: str) -> bytes:
    """The crawled page: every HTML trigger, then an <img> below 300 unclosed tags."""
    head = ('<!doctype html><html><head><title>A hostile page</title><base href="http://[oops/"></head><body>'
            f'<img src="{images}/g5.jpg" width="²" height="48" alt="a violet square with pale stripes">'
            f'<img src="{images}/srcset-fallback.jpg" srcset="{images}/srcset-big.jpg ²w, '
            f'{images}/srcset-small.jpg 100w" alt="a picture offered in two widths">'
            '<img src="http://[::1" alt="a picture whose source is no URL">'
            '<a href="http://[::1">a link that is no URL</a>'
            f'<a href="{site}/next.html">the next page</a>')
    deep = "".join("<div><span>" if i % 2 else "<section>" for i in range(DEEP_TAGS))
    tail = f'<img src="{images}/deep.jpg" alt="a picture far below the unclosed tags"></body></html>'
    return (head + deep + tail).encode("utf-8")


@pytest.fixture
def hosts():
    """({name: server}, listener): each a loopback port (a host); the listener is not allowlisted."""
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(HostileServer(**kw)) for name, kw in (
            ("good", {"overrides": {path: _ok(data) for path, data in GOOD.items()}}),
            ("site", {}),
            ("hostile", {}),
            ("crawl_delay", {"robots": b"User-agent: *\nCrawl-delay: 100000\n"}),
            ("robots_503", {"robots": "503"}),
            ("retry_after", {}))}
        listener = stack.enter_context(CountingListener())
        site, good = servers["site"], servers["good"].base_url
        site.server.routes["/page.html"] = _ok(_page(good, site.base_url), "text/html; charset=utf-8")
        site.server.routes["/next.html"] = _ok(b"<html><body><p>nothing to see</p></body></html>", "text/html")
        servers["hostile"].redirect("/to-listener.jpg", f"http://127.0.0.1:{listener.port}/x.jpg")
        yield servers, listener


def _write_inputs(root: Path, servers) -> dict:
    """The input files; returns {label: (list path, row)} of every list row and the crawl's URLs."""
    g, h = servers["good"].base_url, servers["hostile"].base_url
    lists = root / "lists"
    (lists / "a").mkdir(parents=True)
    (lists / "b").mkdir()
    csv_rows = [
        (f"{g}/g1.jpg".encode(), b"a red caf\xe9 sign with white stripes"),  # latin-1 byte in the caption
        (b"http://[::1/x.jpg", b"a picture behind a bad literal"),
        (f"{g}/long-{'x' * 3000}.jpg".encode(), b"a picture behind a very long address"),
        (f"{h}/length-superscript-endless.jpg".encode(), b"an endless body with a superscript length"),
        (f"{h}/retry-after-superscript-always.jpg".encode(), b"a server that always asks to retry"),
        (f"{servers['crawl_delay'].base_url}/ok.jpg".encode(), b"a host that asks for a day between requests"),
        (f"{servers['robots_503'].base_url}/ok.jpg".encode(), b"a host whose robots file fails"),
        (f"{h}/tdm-reserved.jpg".encode(), b"a picture reserved from text mining"),
        (f"{h}/noai.jpg".encode(), b"a picture marked not for training"),
        (f"{h}/to-listener.jpg".encode(), b"a redirect to a private port"),
        (f"{g}/planted-bug.jpg".encode(), b"a download that trips a planted bug"),
        (f"{servers['retry_after'].base_url}/retry-after-huge.jpg".encode(), b"a host that asks for a day off"),
    ]
    (lists / "main.csv").write_bytes(b"url,caption\n" + b"".join(u + b"," + c + b"\n" for u, c in csv_rows))
    jsonl = [
        json.dumps({"url": f"{g}/g2.jpg", "caption": "a green \ud800 banner with stripes"}),  # lone surrogate
        "{not json at all",
        "null",
        json.dumps(f"{g}/bare-string.jpg"),
        "[1, 2, 3]",
        json.dumps({"url": f"{g}/\udc80.jpg", "caption": "a picture behind a lone surrogate"}),
        json.dumps({"url": 12345, "caption": "a picture whose address is a number"}),
        json.dumps({"caption": "a picture without any address"}),
    ]
    (lists / "rows.jsonl").write_text("\n".join(jsonl) + "\n", encoding="utf-8")
    (lists / "object.json").write_text(json.dumps({"url": f"{g}/g9.jpg", "caption": "one object, no array"}))
    (lists / "a" / "list.csv").write_text(f"url,caption\n{g}/g3.jpg,a blue tile with thin stripes\n")
    (lists / "b" / "list.csv").write_text(f"url,caption\n{g}/g4.jpg,a yellow tile with wide stripes\n")
    site = servers["site"].base_url
    (root / "seeds.txt").write_text(f"# seeds\n{site}/page.html\nhttp://[::1\n\n")
    labels = {name: (lists / "main.csv", row) for row, name in enumerate(
        ["g1", "bad-ipv6", "long-url", "length-superscript", "retry-after-superscript", "crawl-delay", "robots-503",
         "tdm-header", "noai", "ssrf-redirect", "planted-bug", "retry-after-100000"])}
    labels.update({name: (lists / "rows.jsonl", row) for row, name in enumerate(
        ["g2", "jsonl-malformed", "jsonl-null", "jsonl-string", "jsonl-array", "jsonl-surrogate-url",
         "jsonl-number-url", "jsonl-no-url"])})
    labels.update({"json-object": (lists / "object.json", -1), "g3": (lists / "a" / "list.csv", 0),
                   "g4": (lists / "b" / "list.csv", 0)})
    return {make_key(source_id(str(path)), row): name for name, (path, row) in labels.items()}


EXPECTED = {
    # the 5 good images
    "g1": "kept", "g2": "kept", "g3": "kept", "g4": "kept", "g5": "kept",
    # list rows
    "bad-ipv6": "extract.bad_url", "long-url": "extract.bad_url",
    "jsonl-malformed": "extract.bad_row", "jsonl-null": "extract.bad_row", "jsonl-string": "extract.bad_row",
    "jsonl-array": "extract.bad_row", "jsonl-surrogate-url": "extract.bad_encoding",
    "jsonl-number-url": "extract.bad_url", "jsonl-no-url": "extract.bad_url", "json-object": "extract.unreadable_file",
    # fetch-level triggers
    "length-superscript": "fetch.too_large", "retry-after-superscript": "fetch.http_5xx",
    "crawl-delay": "fetch.host_too_slow", "robots-503": "fetch.robots_unavailable", "tdm-header": "fetch.tdm_reserved",
    "noai": "fetch.noai", "ssrf-redirect": "fetch.private_address", "retry-after-100000": "fetch.host_too_slow",
    "planted-bug": "fetch.internal_error",
    # the crawled page's images
    "srcset-small.jpg": "fetch.http_4xx", "http://[::1": "extract.bad_url", "deep.jpg": "fetch.http_4xx",
}


def _label(row: dict, names: dict) -> str:
    if row["key"] in names:
        return names[row["key"]]
    url = row.get("image_url", row.get("url")) or ""
    return "g5" if url.endswith("/g5.jpg") else url.rsplit("/", 1)[-1] if url.startswith("http://127") else url


def _outcomes(out: Path, names: dict) -> dict:
    got = {}
    for row in shard_format.read_samples_table(str(out / "shards")).to_pylist():
        got[_label(row, names)] = "kept"
    for row in shard_format.read_rejections_table(str(out)).to_pylist():
        label = _label(row, names)
        assert label not in got, f"{label} in two places"
        got[label] = row["reason"]
    return got


def _tar_members(shards: Path) -> dict:
    members = {}
    for tar in sorted(shards.glob("*.tar")):
        with tarfile.open(tar) as fh:
            members[tar.name] = fh.getnames()
    return members


def test_curate_over_every_trigger(hosts, tmp_path, capsys, monkeypatch):
    import transforms.fetch as fetch_mod

    servers, listener = hosts
    names = _write_inputs(tmp_path, servers)
    real_fetch = fetch_mod.fetch_image

    def fetch_image(client, pair, svg):
        if pair.image_url.endswith("/planted-bug.jpg"):
            raise RuntimeError("planted bug on one URL")
        return real_fetch(client, pair, svg)

    monkeypatch.setattr(fetch_mod, "fetch_image", fetch_image)
    config = tmp_path / "hostile.yaml"
    config.write_text(yaml.safe_dump({"fetch": {
        "private_network_allowlist": [s.exempt for s in servers.values()],
        "retries": 1, "connect_timeout_s": 2.0, "read_timeout_s": 2.0, "total_timeout_s": 5.0,
        "max_bytes": 2_000_000}}))
    out = tmp_path / "out"
    argv = ["curate", "--output", str(out), "--config", str(config), "--seeds", str(tmp_path / "seeds.txt"),
            "--url-list", str(tmp_path / "lists" / "**"), "--set", "score.enabled=false",
            "--set", "dedupe.near=false", "--set", "crawl.max_depth=1", "--direct_num_workers=1"]
    start = time.monotonic()
    rc = main(argv)
    elapsed = time.monotonic() - start
    printed = capsys.readouterr()
    assert elapsed < RUN_BOUND_S, f"the run took {elapsed:.0f} s"

    # exit 3 with the internal-errors summary (pipeline/cli.py CURATE_EXIT_CODES)
    assert rc == 3, printed.err[-2000:]
    assert "internal errors: 1 item(s)" in printed.err and "fetch.internal_error 1" in printed.err
    assert "RuntimeError: planted bug on one URL @ " in printed.err
    assert "accounting ok" in printed.out

    # the whole outcome map
    got = _outcomes(out, names)
    wrong = {k: (EXPECTED.get(k), got.get(k)) for k in set(EXPECTED) | set(got) if EXPECTED.get(k) != got.get(k)}
    assert not wrong, f"(expected, got): {sorted(wrong.items())}"

    # accounting, stats, internal errors
    stats = json.loads((out / "stats.json").read_text())
    assert stats["accounting_ok"] and stats["pairs_extracted"] == stats["kept"] + stats["rejected"] == len(EXPECTED)
    assert stats["kept"] == 5
    assert Counter(stats["rejected_by_reason"]) == Counter(r for r in EXPECTED.values() if r != "kept")
    assert stats["internal_errors"]["total"] == 1
    assert stats["pages"]["fetched"] == 2  # page.html, and next.html behind the bad <a href>

    # sizes.json == tar members == parquet rows; keys distinct (same-basename lists included)
    samples = shard_format.read_samples_table(str(out / "shards")).to_pylist()
    members = _tar_members(out / "shards")
    sizes = json.loads((out / "shards" / "sizes.json").read_text())
    flat = [m for names_ in members.values() for m in names_]
    assert len(flat) == len(set(flat)), "duplicate tar members"
    assert sizes == {tar: len({m.split(".", 1)[0] for m in ms}) for tar, ms in members.items()}
    assert sum(sizes.values()) == len(samples) == 5 == len({s["key"] for s in samples})

    # captions are text: the latin-1 byte and the lone surrogate became U+FFFD, never "b'...'"
    captions = {_label(s, names): s["caption"] for s in samples}
    assert captions["g1"] == "a red caf\ufffd sign with white stripes"
    assert captions["g2"] == "a green \ufffd banner with stripes"
    assert not any(c.startswith(("b'", 'b"')) for c in captions.values())
    texts = {}
    for tar in sorted((out / "shards").glob("*.tar")):
        with tarfile.open(tar) as fh:
            texts.update({m.name: fh.extractfile(m).read().decode("utf-8") for m in fh if m.name.endswith(".txt")})
    assert sorted(texts.values()) == sorted(captions.values())

    # the SSRF redirect reached nothing
    assert listener.settle() == (0, 0)
