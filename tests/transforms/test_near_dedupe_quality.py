"""Near-duplicate quality on generated variants: recall >= 0.95 at precision >= 0.99 (issue 5).

300 groups (150 distinct sample scenes, 150 photo-like textures), each a base plus a
re-encode (JPEG q30-75), a rescale (0.5-0.9x), a crop of up to 10 % of the area and a
colour shift; the mirror image of every base is a non-duplicate control. Hashes come
from the pipeline's own resize + HashImages; groups from DedupeNear itself (Beam, the
default config): the survivor named in each rejection is the member's group. Scored
pairwise over the components: a false merge of two groups costs every cross pair, so
precision here is strict.
"""

import json
import re

import apache_beam as beam
import numpy as np
import pytest

from filters.dedupe_policy import SurvivorPolicy
from pipeline.config import load_config
from pipeline.specs import lsh_spec
from pipeline.records import AltPair, ResizedImage
from tests.conftest import local_test_pipeline
from tests.transforms import near_variants
from transforms.dedupe import DedupeNear
from transforms.lsh import connected_components

GROUPS = 300


def _scores(items, components):
    comp = np.array([components.get(i, i) for i in range(len(items))])
    truth = np.array([item.group for item in items])
    upper = np.triu_indices(len(items), 1)
    same_truth = (truth[:, None] == truth[None, :])[upper]
    same_found = (comp[:, None] == comp[None, :])[upper]
    tp = int((same_truth & same_found).sum())
    precision = tp / max(1, int(same_found.sum()))
    recall = tp / max(1, int(same_truth.sum()))
    base = {item.group: i for i, item in enumerate(items) if item.variant == "base"}
    per_variant = {}
    for i, item in enumerate(items):
        if item.variant in near_variants.VARIANTS:
            per_variant.setdefault(item.variant, []).append(comp[i] == comp[base[item.group]])
    mirrored = [comp[i] == comp[base[item.group[:-1]]] for i, item in enumerate(items) if item.variant == "mirror"]
    return precision, recall, {k: float(np.mean(v)) for k, v in per_variant.items()}, float(np.mean(mirrored))


_SURVIVOR = re.compile(r"duplicate of (\d+) \(group of \d+\)")


def near_groups(hashes, colours, spec, path) -> dict:
    """{index: index of its group's survivor} for every rejected record of DedupeNear over the
    hashes (keys are zero-padded indexes and the policy first_by_key, so the survivor is the
    group's smallest index: union-find's root)."""
    records = [ResizedImage(pair=AltPair(f"{i:06d}", "http://s/p", f"http://s/{i}.jpg", "a b c"), data=b"",
                            ext="jpg", width=1, height=1, original_width=1, original_height=1, sha256="",
                            phash=f"{int(h):016x}", colour_sig=bytes(c).hex()) for i, (h, c) in
               enumerate(zip(hashes, colours))]
    with local_test_pipeline() as p:
        _kept, rejected = p | beam.Create(records) | DedupeNear(spec, SurvivorPolicy("first_by_key"))
        _ = (rejected | "Detail" >> beam.Map(lambda r: (r.key, r.detail)) | "All" >> beam.combiners.ToList()
             | "Write" >> beam.Map(lambda rows, out=str(path): open(out, "w").write(json.dumps(rows))))
    with open(path) as f:
        return {int(key): int(_SURVIVOR.fullmatch(detail).group(1)) for key, detail in json.load(f)}


def _search(items, path):
    spec = lsh_spec(load_config())
    hashes = np.array([item.phash for item in items], dtype=np.uint64)
    colours = np.frombuffer(b"".join(item.colour for item in items), dtype=np.uint8).reshape(len(items), -1)
    return near_groups(hashes, colours, spec, path), spec, hashes, colours


@pytest.fixture(scope="module")
def area_crops():
    return near_variants.generate(GROUPS, seed=5, crop_by_area=True)


@pytest.fixture(scope="module")
def area_search(area_crops, tmp_path_factory):
    return _search(area_crops, tmp_path_factory.mktemp("near") / "rejected.json")


def test_recall_and_precision_on_generated_variants(area_crops, area_search):
    components, *_ = area_search
    precision, recall, per_variant, mirrored = _scores(area_crops, components)
    assert precision >= 0.99, (precision, recall, per_variant)
    assert recall >= 0.95, (precision, recall, per_variant)
    assert per_variant["reencode"] >= 0.98 and per_variant["rescale"] >= 0.98 and per_variant["colour"] >= 0.98
    assert mirrored <= 0.01  # the control: a mirror image is another picture


def test_lsh_finds_what_exhaustive_search_finds(area_crops, area_search):
    """The bands lose almost nothing against comparing every pair (what LSH saves us from),
    and the components DedupeNear draws are those of the edges it keeps: no false merges."""
    components, spec, hashes, colours = area_search
    dist = np.bitwise_count(hashes[:, None] ^ hashes[None, :])
    cdist = np.abs(colours[:, None, :].astype(np.int16) - colours[None, :, :]).max(-1)
    rows, cols = np.nonzero(np.triu((dist <= spec.threshold) & (cdist <= spec.colour_delta), 1))
    exhaustive = connected_components(zip(rows.tolist(), cols.tolist()))
    assert set(components) <= set(exhaustive)  # every merge DedupeNear makes is one of a verified pair
    assert all(exhaustive[i] == exhaustive[root] for i, root in components.items())
    _, recall_lsh, _, _ = _scores(area_crops, components)
    _, recall_all, _, _ = _scores(area_crops, exhaustive)
    assert recall_all - recall_lsh <= 0.01


def test_crops_of_ten_percent_a_side_are_the_limit(tmp_path):
    """Cutting up to 10 % of each side (up to 19 % of the area) is past what a 64-bit pHash
    holds: precision stays, recall drops (measured: ~0.9 overall, ~0.75 on the crops)."""
    items = near_variants.generate(100, seed=7, crop_by_area=False)
    components, *_ = _search(items, tmp_path / "rejected.json")
    precision, recall, per_variant, _ = _scores(items, components)
    assert precision >= 0.99
    assert recall >= 0.85 and per_variant["crop"] >= 0.6
