"""End to end on the sample web: safety tags from the stored embeddings, the safety filter, and search.

One curation with the bundled scorer and safety on: the bundled prompt sets (nsfw,
watermark, screenshot: plumbing only with a scorer that has seen coloured shapes)
plus a test tag ``red_shape`` whose prompts the scorer does understand, with the
filter on. Then ``wit search`` over the output: every kept scene's plain description
must find it in the top 10 (recall@10), an image finds itself, and the HTML page renders.
"""

import json
import re

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline import shard_format
from pipeline.build import Inputs
from pipeline.cli import main
from pipeline.config import CONFIG_DIR, load_config
from pipeline.run import run_curation
from pipeline.sample import SampleServer, generate_site
from pipeline.sample.scenes import CAPTION_TEMPLATES, COLOURS, SHAPES
from pipeline.search import load_searcher
from pipeline.search_index import SearchInputError
from transforms.embeddings import read_embeddings

# Zero-shot over every scene description: red shapes against shapes of any other colour.
RED_PROMPTS = {"positive": [f"a red {s} on a {b} background" for s in SHAPES for b in COLOURS if b != "red"],
               "negative": [f"a {c} {s} on a {b} background" for s in SHAPES for c in COLOURS if c != "red"
                            for b in COLOURS if b != c],
               "threshold": 0.9}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    prompts = yaml.safe_load((CONFIG_DIR / "safety_prompts.yaml").read_text())
    prompts["red_shape"] = RED_PROMPTS
    (root / "prompts.yaml").write_text(yaml.safe_dump(prompts))
    cfg = load_config([CONFIG_DIR / "sample.yaml"], [
        "fetch.allow_private_networks=true", "safety.enabled=true", "safety.filter=true",
        f"safety.prompts={root / 'prompts.yaml'}", "safety.thresholds=[nsfw=off, watermark=off, screenshot=off]"])
    site = generate_site(seed=0)
    with SampleServer(site) as server:
        (root / "seeds.txt").write_text("\n".join(server.seed_urls) + "\n")
        stats = run_curation(cfg, Inputs(seeds_file=str(root / "seeds.txt")), str(root / "out"))
        base = server.base_url
    return {"stats": stats, "out": root / "out", "root": root, "site": site, "base": base}


def _shown(searched, row) -> str:
    """What the image of a rejection row shows (mismatched captions describe another scene)."""
    path = row["image_url"][len(searched["base"]):]
    for entry in searched["site"].manifest:
        if entry.image_path == path and entry.kind == "mismatched":
            return entry.note
    return row["caption"]


def _description(caption: str) -> str:
    """The scene's plain description inside a templated caption."""
    for template in sorted(CAPTION_TEMPLATES, key=len, reverse=True):
        head, _, tail = template.partition("{}")
        if caption.startswith(head) and caption.endswith(tail) and len(caption) > len(head) + len(tail):
            return caption[len(head):len(caption) - len(tail)]
    return caption


def test_safety_columns_stats_and_filter(searched):
    stats, out = searched["stats"], searched["out"]
    assert stats["accounting_ok"]
    assert stats["safety"]["method"] == "prompts" and stats["safety"]["filter"] is True
    assert stats["safety"]["thresholds"] == {"nsfw": None, "watermark": None, "screenshot": None, "red_shape": 0.9}
    assert stats["safety"]["prompts"]["red_shape"]["positive"] == RED_PROMPTS["positive"]
    kept = shard_format.read_samples_table(str(out / "shards")).to_pylist()
    for row in kept:
        for tag in ("nsfw", "watermark", "screenshot", "red_shape"):
            assert 0.0 <= row[f"safety_{tag}"] <= 1.0
        assert row["safety_red_shape"] < 0.9
    dropped = [r for r in shard_format.read_rejections_table(str(out)).to_pylist() if r["stage"] == "safety"]
    assert dropped and {r["reason"] for r in dropped} == {"safety.custom"}
    assert stats["rejected_by_reason"]["safety.custom"] == len(dropped)
    assert all(r["detail"].startswith("red_shape ") for r in dropped)
    red = [r for r in dropped if re.search(r"\bred\b", _shown(searched, r))]
    assert len(red) >= 0.8 * len(dropped)  # the scorer knows red shapes: the tag means something here
    tar_meta = json.loads(next(iter(_tar_json(out))))
    assert "safety_nsfw" in tar_meta


def _tar_json(out):
    import tarfile

    with tarfile.open(shard_format.list_tars(str(out / "shards"))[0]) as tar:
        for member in tar:
            if member.name.endswith(".json"):
                yield tar.extractfile(member).read()
                return


def recall_at(searcher, k: int) -> tuple[float, int]:
    """Mean over distinct descriptions of |relevant in top k| / min(|relevant|, k)."""
    relevant = {}
    for key, row in searcher.rows.items():
        relevant.setdefault(_description(row["caption"]), set()).add(key)
    queries = sorted(relevant)
    hits = searcher.search_vectors(searcher.embed_texts(queries), k)
    scores = [len(relevant[q] & {h.row["key"] for h in hs}) / min(len(relevant[q]), k)
              for q, hs in zip(queries, hits)]
    return float(np.mean(scores)), len(queries)


def test_text_search_recall_on_the_sample_web(searched):
    searcher = load_searcher(str(searched["out"]))
    assert searcher.index.method == "exact" and len(searcher.rows) > 50
    recall10, n = recall_at(searcher, 10)
    recall1, _ = recall_at(searcher, 1)
    print(f"sample web search: {n} queries over {len(searcher.rows)} kept; recall@1 {recall1:.3f} "
          f"recall@10 {recall10:.3f}")
    assert recall10 >= 0.9


def test_hnsw_agrees_with_exact_and_is_cached(searched):
    exact = load_searcher(str(searched["out"]))
    approx = load_searcher(str(searched["out"]), exact_max=0)
    assert approx.index.method == "hnsw"
    assert list((searched["out"] / "search_index").glob("hnsw-*.faiss"))
    queries = exact.index.matrix[:20]
    _, e = exact.index.search(queries, 10)
    _, a = approx.index.search(queries, 10)
    overlap = np.mean([len(set(x) & set(y)) / 10 for x, y in zip(e, a)])
    assert overlap >= 0.95
    assert load_searcher(str(searched["out"]), exact_max=0).index.method == "hnsw"  # from the cache


def test_image_search_finds_the_image_itself(searched, tmp_path):
    searcher = load_searcher(str(searched["out"]))
    from pipeline.report.loader import load_run, read_images

    run = load_run(str(searched["out"]))
    row = next(iter(searcher.rows.values()))
    path = tmp_path / "query.jpg"
    path.write_bytes(read_images(run, [row])[row["key"]])
    hits = searcher.search_image(str(path), 5)
    assert hits[0].row["key"] == row["key"] and hits[0].similarity > 0.99
    with pytest.raises(SearchInputError, match="cannot read query image"):
        searcher.search_image(str(tmp_path / "missing.jpg"), 5)


def test_cli_search_prints_hits_and_writes_html(searched, tmp_path, capsys):
    html = tmp_path / "results.html"
    code = main(["search", str(searched["out"]), "a red circle on a blue background", "--k", "5",
                 "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 0 and len([line for line in out.splitlines() if re.match(r"\s+\d+\s", line)]) == 5
    page = html.read_text()
    assert page.count('class="card"') == 5 and "similarity" in page and "a red circle on a blue background" in page
    assert len(list((tmp_path / "results_assets" / "thumbs").glob("*.jpg"))) == 5
    assert main(["search", str(searched["out"])]) == 2  # no query
    assert main(["search", str(tmp_path), "x"]) == 2  # not an output


def test_search_without_embeddings_is_a_clear_error(searched, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(searched["out"], copy)
    shutil.rmtree(copy / "embeddings")
    with pytest.raises(SearchInputError, match="no embeddings"):
        load_searcher(str(copy))
    assert read_embeddings(str(searched["out"])).num_rows > 0 and pq


def test_refilter_carries_safety_columns_and_sections(searched):
    out, new = searched["out"], searched["root"] / "refiltered"
    assert main(["refilter", str(out), "--min-score", "0.55", "--output", str(new)]) == 0
    shards = sorted(p.name for p in (out / "shards").iterdir())
    assert shards == sorted(p.name for p in (new / "shards").iterdir())
    for name in shards:  # safety_<tag> columns included: byte for byte
        assert (out / "shards" / name).read_bytes() == (new / "shards" / name).read_bytes(), name
    stats = json.loads((new / "stats.json").read_text())
    assert stats["safety"] == searched["stats"]["safety"] and stats["opt_out"] == searched["stats"]["opt_out"]
