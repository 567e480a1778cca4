"""End to end: the sample web curated with a blocklist of every kind; the opt-out summary in stats.json.

One URL prefix, one exact URL, one sha256 and one pHash (of images the plain run keeps)
must each end as their own reason code; everything else as the manifest says; the
accounting identity holds; stats.json's opt_out counts robots.txt, noai and blocklist
drops per domain.
"""

import hashlib
import io
from collections import Counter

import pytest
from PIL import Image

from pipeline import shard_format
from pipeline.build import Inputs
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import run_curation
from pipeline.sample import SampleServer, generate_site, manifest_by_pair
from transforms.hashing import phash_image, to_hex


def _kept_matched(site):
    """Image paths of single-use matched pairs the plain run keeps, in manifest order."""
    uses = Counter(e.image_path for e in site.manifest)
    return [e for e in site.manifest if e.kind == "matched" and e.expected == "kept" and uses[e.image_path] == 1]


@pytest.fixture(scope="module")
def blocked_run(tmp_path_factory):
    site = generate_site(seed=0)
    root = tmp_path_factory.mktemp("blocklist")
    chosen = _kept_matched(site)[:4]
    prefix_dir = chosen[0].image_path  # the whole image path as a prefix
    with SampleServer(site) as server:
        base = server.base_url
        lists = {
            "url_prefixes": f"{base}{prefix_dir}\n",
            "urls": f"{base}{chosen[1].image_path}\n",
            "sha256": hashlib.sha256(site.resources[chosen[2].image_path].body).hexdigest() + "\n",
            "phash": to_hex(phash_image(Image.open(io.BytesIO(site.resources[chosen[3].image_path].body)))) + "\n",
        }
        overrides = ["fetch.allow_private_networks=true", "blocklist.phash_radius=6"]
        for kind, text in lists.items():
            (root / f"{kind}.txt").write_text("# test list\n" + text)
            overrides.append(f"blocklist.{kind}=[{root / f'{kind}.txt'}]")
        cfg = load_config([CONFIG_DIR / "sample.yaml"], overrides)
        seeds = root / "seeds.txt"
        seeds.write_text("\n".join(server.seed_urls) + "\n")
        stats = run_curation(cfg, Inputs(seeds_file=str(seeds)), str(root / "out"))
    expected = {pair: e.expected for pair, e in manifest_by_pair(site).items()}
    for entry, reason in zip(chosen, ("blocklist.url_prefix", "blocklist.url", "blocklist.sha256",
                                      "blocklist.phash")):
        expected[(entry.page_path, entry.image_path)] = reason
    return {"stats": stats, "out": root / "out", "base": base, "expected": expected}


def test_every_list_kind_gives_its_reason_and_the_rest_is_unchanged(blocked_run):
    base, got = blocked_run["base"], {}
    strip = lambda url: url[len(base):] if url.startswith(base) else url  # noqa: E731
    for row in shard_format.read_samples_table(str(blocked_run["out"] / "shards")).to_pylist():
        got[(strip(row["page_url"]), strip(row["url"]))] = "kept"
    for row in shard_format.read_rejections_table(str(blocked_run["out"])).to_pylist():
        got[(strip(row["page_url"]), strip(row["image_url"]))] = row["reason"]
    expected = blocked_run["expected"]
    wrong = {p: (expected.get(p), got.get(p)) for p in set(expected) | set(got) if expected.get(p) != got.get(p)}
    assert not wrong, sorted(wrong.items())[:10]


def test_accounting_funnel_and_opt_out_summary(blocked_run):
    stats = blocked_run["stats"]
    assert stats["accounting_ok"] and stats["pairs_extracted"] == stats["kept"] + stats["rejected"]
    stages = [row["stage"] for row in stats["funnel"]]
    assert stages.index("ApplyBlocklists") < stages.index("CaptionRules")
    assert stages.index("ImageRules") < stages.index("BlockImageHashes") < stages.index("DedupeImages")
    assert stats["blocklist"]["entries"] == {"domains": 0, "url_prefixes": 1, "urls": 1, "sha256": 1, "phash": 1}
    opt_out = stats["opt_out"]
    by_reason = stats["rejected_by_reason"]
    wanted = {r: n for r, n in by_reason.items() if r.startswith("blocklist.") or r in ("fetch.noai",
                                                                                         "fetch.robots_disallowed")}
    assert opt_out["total"] == wanted
    assert {"blocklist.url_prefix", "blocklist.url", "blocklist.sha256", "blocklist.phash", "fetch.noai",
            "fetch.robots_disallowed"} <= set(wanted)
    assert list(opt_out["by_domain"]) == ["127.0.0.1"] and opt_out["by_domain"]["127.0.0.1"] == wanted
